"""import_file(): read a dataset or log file into the ledger, streaming, in all-or-nothing batches.

What is written, and when:
- The format is settled before anything is written: a file that is not in a known format (or not
  in the one asked for) raises ImportFormatError and the ledger is untouched.
- Rows are appended in transactions of about BATCH_ROWS rows (Ledger.append_many: all or none);
  the rows of one source record always go in the same transaction.
- A malformed record is counted and reported with its position, never fatal.
- Records already imported from the same file (same sha256 and position; for llm's logs.db, the
  same llm response id) are skipped and counted, so an import can be re-run safely.
- Cancel (the token, or the consumer closing the generator, or Ctrl+C) is checked between records:
  the rows not yet committed are dropped, the batches already committed stay, and running the same
  import again continues where it stopped, thanks to the de-duplication.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from app.core.cancel import NEVER, CancelToken
from app.core.errors import LedgerError
from app.core.hashing import sha256_file
from app.core.ingest.containers import Issue
from app.core.ingest.dedup import AlreadyImported
from app.core.ingest.errors import ImportFileError, ImportFormatError, RecordError
from app.core.ingest.formats import Detected, detect
from app.core.ingest.readers import READERS
from app.core.ingest.readers.batch_join import RequestIndex
from app.core.ingest.records import ReadOptions, checked_row
from app.core.progress import Progress, drive
from app.core.store.events import record_event
from app.core.store.ledger import Ledger, utc_now

STAGE = "importing"
BATCH_ROWS = 500
PROGRESS_EVERY = 1000  # records between progress reports when nothing is committed (skipping)
MAX_ISSUES = 1000  # issues kept for the summary; all are counted
BATCH_FORMATS = ("openai-batch-input", "openai-batch-output")


@dataclass(frozen=True, kw_only=True)
class ImportProgress(Progress):
    """Yielded while importing (stage 'importing'): counts so far, and how far through the file
    (done/total in unit)."""

    file: str
    format: str
    records: int
    rows_written: int
    skipped: int
    malformed: int
    unit: str  # "bytes" or "rows"


@dataclass(frozen=True)
class ImportSummary:
    """What import_file() returns.

    records: source records read (an llm row, a JSONL line, a ShareGPT conversation...);
    rows_written: ledger rows added; skipped: records already imported earlier; malformed:
    records (and unreadable stretches) reported in `issues` (the first MAX_ISSUES of them).
    """

    file: str
    file_sha256: str
    format: str
    workflow: str
    records: int = 0
    rows_written: int = 0
    skipped: int = 0
    malformed: int = 0
    issues: tuple[Issue, ...] = ()
    cancelled: bool = False
    first_id: int | None = None
    last_id: int | None = None
    join_file: str | None = None
    unmatched_results: int = 0  # output lines whose custom_id is not in the input file
    unmatched_requests: int = 0  # input requests with no result in the output file

    def nothing_imported(self) -> str | None:
        """Why a finished import wrote nothing and skipped nothing (None when it wrote or skipped
        rows, or was cancelled): every record malformed, or no records in the file."""
        if self.cancelled or self.rows_written or self.skipped:
            return None
        name = Path(self.file).name
        if self.malformed:
            first = f" (first: {self.issues[0]})" if self.issues else ""
            if self.records == 0:
                return f"{name}: nothing could be read from it: {self.malformed} unreadable stretches{first}"
            return f"{name}: every one of its {self.records} records is malformed{first}"
        if self.unmatched_requests:
            return (f"{name}: no result has a request in the input file, and the input file's "
                    f"{self.unmatched_requests} requests have no result")
        return f"{name}: it holds no records to import"

    def as_dict(self) -> dict[str, Any]:
        """Plain data (issues as strings), for JSON."""
        data = asdict(self)
        data["issues"] = [str(issue) for issue in self.issues]
        return data


@dataclass
class _Tally:
    records: int = 0
    written: int = 0
    skipped: int = 0
    malformed: int = 0
    unmatched_results: int = 0
    issues: list[Issue] = field(default_factory=list)
    first_id: int | None = None
    last_id: int | None = None

    def issue(self, issue: Issue) -> None:
        self.malformed += 1
        if len(self.issues) < MAX_ISSUES:
            self.issues.append(issue)


def file_sha256(path: Path, cancel: CancelToken = NEVER) -> str | None:
    """sha256 hex of a file, read in chunks; None if cancelled."""
    try:
        return sha256_file(path, cancel) or None
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc


def _pair(path: Path, join: Path, fmt: str, options: ReadOptions) -> tuple[Path, Detected, Path]:
    """(output file, its detection, input file) of a Batch API pair given in either order."""
    first = detect(path, fmt if fmt in BATCH_FORMATS else "auto", options)
    second = detect(join, "auto", options)
    kinds = {first.format, second.format}
    if kinds != set(BATCH_FORMATS):
        raise ImportFormatError(
            f"{path} and {join}: joining pairs an OpenAI Batch API input file with its output file, "
            f"but these are {first.format} and {second.format}")
    output, detected, requests = (path, first, join) if first.format == "openai-batch-output" else (
        join, second, path)
    if (second if requests == join else first).container != "jsonl":
        raise ImportFormatError(f"{requests}: a Batch API input file must be JSON Lines")
    return output, detected, requests


def import_file(ledger: Ledger, path: Path | str, workflow: str, fmt: str = "auto", *,
                join: Path | str | None = None, prompt_field: str | None = None,
                response_field: str | None = None, cancel: CancelToken = NEVER,
                batch_rows: int = BATCH_ROWS) -> Generator[ImportProgress, None, ImportSummary]:
    """Import `path` into `ledger` as rows of `workflow`, source `import`.

    Yields ImportProgress after each committed batch (and every PROGRESS_EVERY records); returns the
    ImportSummary (also when cancelled). Runs on the caller's thread (a worker thread in the GUI).
    `join` names the other file of an OpenAI Batch API input/output pair (either order).
    Raises ImportFileError/ImportFormatError before writing anything when the file cannot be
    imported at all, ValueError for a bad argument, and LedgerError if the ledger fails (batches
    committed before the failure stay).
    """
    if not workflow or not workflow.strip():
        raise ValueError("the workflow name is empty; name the workflow these rows belong to")
    path = Path(path)
    options = ReadOptions(prompt_field=prompt_field or None, response_field=response_field or None)
    index: RequestIndex | None = None
    if join is not None:
        path, detected, request_path = _pair(path, Path(join), fmt, options)
        index = options.requests = RequestIndex(request_path)
    else:
        detected = detect(path, fmt, options)
    tally = _Tally()
    summary = ImportSummary(file=str(path), file_sha256="", format=detected.format, workflow=workflow,
                            join_file=str(index.path) if index else None)
    source = detected.source(path)
    source.cancel = cancel

    def progress() -> ImportProgress:
        return ImportProgress(STAGE, source.done, source.total, file=str(path), format=detected.format,
                              records=tally.records, rows_written=tally.written, skipped=tally.skipped,
                              malformed=tally.malformed, unit=source.progress_unit)

    def finish(cancelled: bool) -> ImportSummary:
        unmatched = index.unmatched if index is not None and not cancelled else 0
        result = _summary(summary, tally, cancelled, unmatched, index)
        if result.file_sha256 and (not cancelled or result.rows_written):
            _record_import(ledger, result)
        return result

    sha = file_sha256(path, cancel)
    if sha is None:
        return finish(True)
    summary = replace(summary, file_sha256=sha)
    meta: dict[str, Any] = {"file": path.name, "file_sha256": sha, "format": detected.format,
                            "imported_at": utc_now()}
    if index is not None:
        request_sha = file_sha256(index.path, cancel)
        if request_sha is None:
            return finish(True)
        meta |= {"request_file": index.path.name, "request_file_sha256": request_sha}
        for _ in index.build(cancel):
            yield progress()
        if cancel.cancelled:
            return finish(True)
    seen = AlreadyImported.load(ledger.db, sha, detected.format)
    reader = READERS[detected.format]
    pending: list[dict[str, Any]] = []
    iterator = iter(source)
    yield progress()
    try:
        for item in iterator:
            if cancel.cancelled:
                return finish(True)
            if isinstance(item, Issue):
                tally.issue(item)
                continue
            tally.records += 1
            if item in seen:
                tally.skipped += 1
                if index is not None and isinstance(item.value, dict):
                    index.mark_used(item.value.get("custom_id"))
            else:
                try:
                    records = reader(item.value, options)
                    rows = [checked_row(record.to_row(workflow, {**meta, "record": item.position}))
                            for record in records]
                except RecordError as exc:
                    tally.issue(Issue(item.position, source.unit, str(exc)))
                    continue
                if records and records[0].origin.get("request_found") is False:
                    tally.unmatched_results += 1
                pending.extend(rows)
                if len(pending) >= batch_rows:
                    _commit(ledger, pending, tally)
                    yield progress()
                    continue
            if tally.records % PROGRESS_EVERY == 0:
                yield progress()
        if cancel.cancelled:
            return finish(True)
        _commit(ledger, pending, tally)
        yield progress()
    except OSError as exc:  # the file went away or a disk failed while reading
        raise ImportFileError(f"{path}: reading failed ({exc.strerror or exc}); {tally.written} rows of this "
                              "import were committed before and stay; run the import again to continue") from exc
    finally:
        close = getattr(iterator, "close", None)
        if close:
            close()
        if index is not None:
            index.close()
    return finish(False)


def _commit(ledger: Ledger, pending: list[dict[str, Any]], tally: _Tally) -> None:
    """Append the pending rows in one transaction and clear them."""
    if not pending:
        return
    try:
        ids = ledger.append_many(pending)
    except LedgerError as exc:
        raise LedgerError(f"{exc} ({tally.written} rows of this import were committed before and stay; "
                          "run the import again to continue)") from exc
    pending.clear()
    tally.written += len(ids)
    tally.first_id = tally.first_id or ids[0]
    tally.last_id = ids[-1]


def _record_import(ledger: Ledger, summary: ImportSummary) -> None:
    """Log the import in the event log (also a cancelled one that wrote rows)."""
    state = "cancelled after" if summary.cancelled else "imported"
    record_event(ledger.db, "import",
                 f"{state} {summary.rows_written} row(s) from {Path(summary.file).name} ({summary.format}) "
                 f"into workflow {summary.workflow!r}",
                 {key: value for key, value in summary.as_dict().items() if key != "issues"})


def _summary(base: ImportSummary, tally: _Tally, cancelled: bool, unmatched_requests: int,
             index: RequestIndex | None) -> ImportSummary:
    issues = list(tally.issues)
    malformed = tally.malformed
    if index is not None:
        malformed += len(index.issues)
        issues = (index.issues + issues)[:MAX_ISSUES]
    return ImportSummary(
        file=base.file, file_sha256=base.file_sha256, format=base.format, workflow=base.workflow,
        records=tally.records, rows_written=tally.written, skipped=tally.skipped, malformed=malformed,
        issues=tuple(issues), cancelled=cancelled, first_id=tally.first_id, last_id=tally.last_id,
        join_file=base.join_file, unmatched_results=tally.unmatched_results,
        unmatched_requests=unmatched_requests,
    )


def run_import(ledger: Ledger, path: Path | str, workflow: str, fmt: str = "auto", **kwargs: Any) -> ImportSummary:
    """import_file() run to the end; returns its ImportSummary."""
    return drive(import_file(ledger, path, workflow, fmt, **kwargs))
