"""The Ledger view's long jobs, as generators for GeneratorThread: export, backup and chain verification.

Each opens its own read-only connection on the worker thread, so the table keeps scrolling on the
DbExecutor's connection while they run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from app.core.cancel import CancelToken
from app.core.store import Ledger, open_db
from app.core.store.backup import BackupResult, backup_ledger
from app.core.store.export import export_rows, record_export
from app.core.store.heads import remember
from app.core.store.ledger import VerifyProgress, VerifyResult
from app.core.store.queries import LogFilter, iter_generations, list_generations

EXPORT_FORMATS = {  # file-dialog filter -> (format, extension)
    "JSON Lines (*.jsonl)": ("jsonl", ".jsonl"),
    "Markdown (*.md)": ("markdown", ".md"),
    "ShareGPT JSON (*.json)": ("sharegpt", ".json"),
}


def format_for(path: Path, dialog_filter: str | None = None) -> str:
    """The export format for a file name (its extension wins over the dialog's filter)."""
    for fmt, extension in EXPORT_FORMATS.values():
        if path.suffix.lower() == extension:
            return fmt
    if dialog_filter in EXPORT_FORMATS:
        return EXPORT_FORMATS[dialog_filter][0]
    return "jsonl"


def export_job(ledger_path: Path, out: Path, fmt: str, flt: LogFilter,
               ranges: list[tuple[int, int]] | None, newest_first: bool):
    """A generator factory that exports the rows matching `flt` (or only the row ranges of the
    table given, as (first, last) row indexes) to `out`; it yields the number of records written."""

    def run(_cancel: CancelToken) -> Iterator[int]:
        db = open_db(ledger_path, readonly=True)
        try:
            if ranges is None:
                rows = iter_generations(db, flt)
            else:
                picked: dict[int, dict] = {}
                for first, last in ranges:
                    for row in list_generations(db, flt, limit=last - first + 1, offset=first,
                                                newest_first=newest_first):
                        picked[row["id"]] = row
                rows = iter([picked[key] for key in sorted(picked)])
            count = export_rows(rows, fmt, out)
        finally:
            db.close()
        writer = open_db(ledger_path)
        try:
            record_export(writer, out, fmt, count, {**asdict(flt), "selected_ranges": ranges})
        finally:
            writer.close()
        yield count

    return run


def verify_job(ledger_path: Path):
    """A generator factory that walks the hash chain: VerifyProgress per chunk, then a VerifyResult."""

    def run(cancel: CancelToken) -> Iterator[VerifyProgress | VerifyResult]:
        ledger = Ledger(open_db(ledger_path, readonly=True), ledger_path)
        try:
            for item in ledger.iter_verify(cancel):
                yield item
                if isinstance(item, VerifyResult) and item.ok:
                    # a LedgerError here reaches the view as the job's error, with the file named
                    remember(ledger_path, item.head_id, item.head_hash, why="shown in the Ledger view")
        finally:
            ledger.close()

    return run


def backup_job(ledger_path: Path, out: Path, force: bool):
    """A generator factory that backs the ledger up to `out` (SQLite's online backup, a consistent
    snapshot while others write) and logs the backup event; it yields the BackupResult."""

    def run(_cancel: CancelToken) -> Iterator[BackupResult]:
        writer = open_db(ledger_path)
        try:
            yield backup_ledger(writer, ledger_path, out, force=force)
        finally:
            writer.close()

    return run
