"""A consistent copy of the ledger, taken with SQLite's online backup API while the app may be writing.

Copying ledger.db alone is wrong: in WAL mode the newest committed rows live in ledger.db-wal
until a checkpoint moves them into the main file. The backup API reads the database through
SQLite, WAL included, as one snapshot (a read transaction; writers carry on), and the copy is
written as a single self-contained file (rollback-journal mode) that opens anywhere.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from app.core.errors import StillroomError
from app.core.store.db import BUSY_TIMEOUT_MS, PRIVATE_FILE_MODE, translate_errors
from app.core.store.events import record_event
from app.core.store.schema import EVENT_HEAD_TABLE, GENERATIONS_TABLE

PARTIAL_SUFFIX = ".partial"


class BackupError(StillroomError):
    """The backup cannot be written where asked (exists, same file, folder not writable)."""


@dataclass(frozen=True)
class BackupResult:
    """What was copied: the output path, its size, and the chain heads it holds."""

    path: Path
    size_bytes: int
    generations: int
    head_id: int | None
    head_hash: str | None
    events: int


def backup_ledger(db: Database, ledger_path: Path | str, out: Path | str, *, force: bool = False) -> BackupResult:
    """Copy the ledger at `ledger_path` to `out` as one consistent snapshot and log a `backup`
    event through `db` (a write connection to the same ledger).

    Refuses an existing `out` unless `force`, and never writes over the ledger itself. The copy is
    written beside `out` and renamed into place, so `out` is either the old file or a whole backup.
    """
    source_path = Path(ledger_path)
    out = Path(out).expanduser()
    if out.exists():
        if _same_file(out, source_path):
            raise BackupError(f"{out} is the ledger itself; choose another file for the backup")
        if not force:
            raise BackupError(f"{out} already exists; choose another file or overwrite it on purpose (--force)")
        if out.is_dir():
            raise BackupError(f"{out} is a folder; give the backup a file name")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # A fresh, unguessable name made with O_EXCL: a link planted beside `out` is never followed.
        fd, temp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=PARTIAL_SUFFIX, dir=out.parent)
        os.fchmod(fd, PRIVATE_FILE_MODE)
        os.close(fd)
        partial = Path(temp_name)
    except OSError as exc:
        raise BackupError(f"{out}: cannot write here ({exc.strerror or exc})") from exc
    try:
        with translate_errors(source_path):
            source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
            try:
                target = sqlite3.connect(str(partial))
                try:
                    source.backup(target)  # all pages in one step: one snapshot of a single read transaction
                    target.execute("PRAGMA journal_mode = DELETE")  # one file, no -wal to carry along
                    result = _describe(target, out)
                    check = target.execute("PRAGMA quick_check").fetchone()[0]
                    if check != "ok":
                        raise BackupError(f"{out}: the copy failed SQLite's check ({check}); the ledger is untouched")
                finally:
                    target.close()
            finally:
                source.close()
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    result = BackupResult(out, out.stat().st_size, result.generations, result.head_id, result.head_hash,
                          result.events)
    record_event(db, "backup", f"ledger backed up to {out} ({result.generations} generations)",
                 {"path": str(out.resolve()), "size_bytes": result.size_bytes, "generations": result.generations,
                  "head_id": result.head_id, "head_hash": result.head_hash, "events": result.events})
    return result


def _describe(conn: sqlite3.Connection, out: Path) -> BackupResult:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    generations, head_id, head_hash, events = 0, None, None, 0
    if GENERATIONS_TABLE in tables:
        generations = conn.execute(f"SELECT count(*) FROM {GENERATIONS_TABLE}").fetchone()[0]
    if "ledger_head" in tables:
        found = conn.execute("SELECT last_id, last_hash FROM ledger_head WHERE id = 1").fetchone()
        if found:
            head_id, head_hash = found
    if EVENT_HEAD_TABLE in tables:
        found = conn.execute(f"SELECT row_count FROM {EVENT_HEAD_TABLE} WHERE id = 1").fetchone()
        events = found[0] if found else 0
    return BackupResult(out, 0, generations, head_id, head_hash, events)


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.samefile(second)
    except OSError:
        return False
