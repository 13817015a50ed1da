"""open_db(): the one way into a ledger database (WAL mode, pragmas, migrations)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from sqlite_utils import Database

from app.core.errors import LedgerError
from app.core.store import heads
from app.core.store.migrations import migrations
from app.core.store.wal_check import foreign_wal_problem

BUSY_TIMEOUT_MS = 10_000
PRIVATE_FILE_MODE = 0o600
# WAL with synchronous=NORMAL survives a killed process without losing a committed row;
# FULL also survives power loss at the cost of an fsync per commit.
SYNCHRONOUS = "NORMAL"
# Checkpoint the WAL every ~40 MB instead of SQLite's default ~4 MB: each checkpoint syncs the
# database file, and at the default it dominates the cost of one-commit-per-generation writes.
WAL_AUTOCHECKPOINT_PAGES = 10_000
CACHE_KIB = 65_536
MIGRATION_ATTEMPTS = 8
MIGRATION_RETRY_S = 0.05


def open_db(path: Path | str, *, readonly: bool = False, migrate: bool = True) -> Database:
    """Open (creating if needed) the ledger at `path`, in WAL mode, with migrations applied.

    Readers pass readonly=True and get their own connection. Raises LedgerError naming the file
    when it cannot be opened (locked, read-only, not a database, disk full), when a ledger that the
    record of chain heads remembers was deleted or emptied (never silently re-created), and when the
    `-wal` file beside it does not belong to it (see wal_check).
    """
    path = Path(path)
    with translate_errors(path):
        _refuse_lost_ledger(path)
        problem = foreign_wal_problem(path)
        if problem:
            raise LedgerError(f"{path}: {problem}")
        if readonly:
            if not path.exists():
                raise LedgerError(f"{path}: no ledger database here")
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                   check_same_thread=False)
            db = Database(conn)
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Reading a WAL database needs its -shm file: fail here, with the reason, not at the first query.
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        if created:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE_MODE))
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        db = Database(conn)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise LedgerError(f"{path}: could not switch the database to WAL mode (got {mode})")
        db.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
        db.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        db.execute("PRAGMA temp_store = MEMORY")
        if migrate:
            _migrate(db)
        if created:
            heads.remember(path, 0, None, event="created", why="a new ledger")
        return db


def _refuse_lost_ledger(path: Path) -> None:
    """LedgerError when the ledger file is missing or empty although its record of heads shows that a
    ledger existed here: it was deleted, moved or truncated, and must not be re-created unnoticed."""
    try:
        empty = path.stat().st_size == 0
    except FileNotFoundError:
        empty = None
    if empty is False:
        return
    record = heads.existed_before(path)
    if record is None:
        return
    what = "was deleted or moved" if empty is None else "was emptied (0 bytes)"
    last = record.heads[-1] if record.heads else None
    held = f"; it last held row {last.head_id} ({last.at})" if last and last.head_id else ""
    raise LedgerError(f"{path}: the ledger {what}, but {record.path.name} shows a ledger existed here{held}. "
                      f"Restore it from a backup; to start a new, empty ledger on purpose, move "
                      f"{record.path.name} away first")


def _migrate(db: Database) -> None:
    """Apply pending migrations. Two processes opening a new ledger at once race to create the
    same tables; the loser rolls back and retries, and then finds the work done."""
    for attempt in range(MIGRATION_ATTEMPTS):
        try:
            if migrations.pending(db):
                migrations.apply(db)
            return
        except sqlite3.OperationalError as exc:
            message = str(exc).lower()
            if attempt == MIGRATION_ATTEMPTS - 1 or not ("already exists" in message or "locked" in message):
                raise
            if db.conn.in_transaction:
                db.conn.rollback()
            time.sleep(MIGRATION_RETRY_S * (attempt + 1))


@contextlib.contextmanager
def translate_errors(path: Path | str) -> Iterator[None]:
    """Turn sqlite3 errors into a LedgerError that names the file and says what is wrong."""
    try:
        yield
    except sqlite3.Error as exc:
        raise LedgerError(f"{path}: {describe_sqlite_error(exc, path)}") from exc
    except PermissionError as exc:
        raise LedgerError(f"{path}: permission denied; check the permissions of the file and its folder "
                          f"({exc.strerror})") from exc
    except OSError as exc:
        raise LedgerError(f"{path}: {exc.strerror or exc}") from exc


def describe_sqlite_error(exc: sqlite3.Error, path: Path | str | None = None) -> str:
    """A plain-language description of an sqlite3 error, with the fix where one is known. With the
    database's `path`, a file that cannot be written says why (file system, file or folder)."""
    text = str(exc)
    low = text.lower()
    if "locked" in low or "busy" in low:
        return "the ledger is locked by another program; close it or try again (" + text + ")"
    read_only = read_only_reason(path)
    if "readonly" in low or "read-only" in low or ("unable to open" in low and read_only):
        return (f"the ledger is read-only: {read_only or 'check the permissions of the file and its folder'}; "
                f"nothing already logged was lost ({text})")
    if "disk is full" in low or "database or disk is full" in low:
        return "the disk is full; free some space, nothing already logged was lost (" + text + ")"
    if "not a database" in low or "malformed" in low:
        return "the file is not a valid SQLite database or is damaged (" + text + ")"
    if "unable to open" in low:
        return "the database file cannot be opened; check the folder exists and is writable (" + text + ")"
    return text


def read_only_reason(path: Path | str | None) -> str | None:
    """Why the database file at `path` cannot be written, when that can be told: a file system
    mounted read-only, a file or a folder without write permission. None otherwise (or when `path`
    is not a file, e.g. a table name given for context)."""
    if path is None:
        return None
    file = Path(path)
    try:
        if not file.is_file():
            return None
        if os.statvfs(file).f_flag & os.ST_RDONLY:
            return "its file system is mounted read-only"
    except (OSError, AttributeError):  # no statvfs on Windows
        pass
    if not os.access(file, os.W_OK):
        return "the file is not writable; check its permissions"
    if not os.access(file.parent, os.W_OK):
        return (f"its folder is not writable; SQLite needs to create {file.name}-wal and {file.name}-shm "
                "beside it, even to read")
    return None
