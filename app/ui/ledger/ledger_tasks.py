"""The Ledger view's long jobs, as generator factories for its JobRunners: export, backup and chain
verification.

Each opens its own read-only connection on the worker thread, so the table keeps scrolling on the
DbExecutor's connection while they run.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import asdict
from pathlib import Path

from app.core.cancel import CancelToken
from app.core.progress import Progress, one_step
from app.core.store import Ledger, open_db
from app.core.store.backup import BackupResult, backup_ledger
from app.core.store.export import export_rows, record_export
from app.core.store.heads import remember
from app.core.store.ledger import VerifyResult
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
    table given, as (first, last) row indexes) to `out`; it returns the number of records written."""

    def export() -> int:
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
        return count

    return lambda _cancel: one_step(export)


def verify_job(ledger_path: Path):
    """A generator factory that walks the hash chain: Progress per chunk; returns the VerifyResult."""

    def run(cancel: CancelToken) -> Generator[Progress, None, VerifyResult | None]:
        ledger = Ledger(open_db(ledger_path, readonly=True), ledger_path)
        try:
            result = yield from ledger.iter_verify(cancel)
        finally:
            ledger.close()
        if result is not None and result.ok:
            # a LedgerError here reaches the view as the job's error, with the file named
            remember(ledger_path, result.head_id, result.head_hash, why="shown in the Ledger view")
        return result

    return run


def backup_job(ledger_path: Path, out: Path, force: bool):
    """A generator factory that backs the ledger up to `out` (SQLite's online backup, a consistent
    snapshot while others write) and logs the backup event; it returns the BackupResult."""

    def backup() -> BackupResult:
        writer = open_db(ledger_path)
        try:
            return backup_ledger(writer, ledger_path, out, force=force)
        finally:
            writer.close()

    return lambda _cancel: one_step(backup)
