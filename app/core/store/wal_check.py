"""Refuse a `-wal` file that does not belong to its ledger database.

SQLite applies the frames of `ledger.db-wal` to `ledger.db` whenever their salts and checksums match
the WAL's own header; nothing in the database file says which WAL belongs to it. So a WAL written
against a copy of the database (carrying a rewritten chain) and planted beside the untouched file is
read as the ledger's content, and the first connection that closes copies it in for good.

The ledger is append-only, which gives a check that needs no extra bookkeeping: the chain head saved
in the database file itself (read with `immutable=1`, which ignores the WAL) must still be in the
chain that the WAL makes visible, with the same hash. A WAL that only appended rows passes; one
that rewrote or removed any row up to that head does not. This runs before any connection that
could write (and so checkpoint) is opened. Rows that only ever lived in the WAL are covered by the
record of heads (see heads.py), not by this check.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

WAL_HEADER_BYTES = 32


def wal_path(path: Path | str) -> Path:
    """The WAL file SQLite uses for the database at `path`."""
    path = Path(path)
    return path.with_name(path.name + "-wal")


def _head_in_file(path: Path) -> tuple[int, str] | None:
    """The chain head as the database file alone records it, ignoring any WAL; None when unreadable
    or when there is none."""
    try:
        conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    except sqlite3.Error:
        return None
    try:
        found = conn.execute("SELECT last_id, last_hash FROM ledger_head WHERE id = 1").fetchone()
    except sqlite3.Error:  # no table yet, or a page being checkpointed right now
        return None
    finally:
        conn.close()
    return (int(found[0]), str(found[1])) if found and found[0] else None


def foreign_wal_problem(path: Path | str) -> str | None:
    """A sentence saying why the `-wal` beside `path` does not belong to it, or None when there is no
    WAL, nothing to compare, or the WAL only adds to what the file holds."""
    path = Path(path)
    wal = wal_path(path)
    try:
        if wal.stat().st_size <= WAL_HEADER_BYTES or not path.exists():
            return None
    except OSError:
        return None
    head = _head_in_file(path)
    if head is None:
        return None
    head_id, head_hash = head
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error:
        return None
    try:
        found = conn.execute("SELECT row_hash FROM generations WHERE id = ?", (head_id,)).fetchone()
    except sqlite3.Error:
        return None  # SQLite itself will report an unreadable database with its reason
    finally:
        conn.close()
    if found is not None and found[0] == head_hash:
        return None
    change = "removes" if found is None else "rewrites"
    return (f"{wal.name} {change} row {head_id}, which the database file holds as its chain head: this WAL was "
            f"not written by this ledger (a WAL from a copy of it, or planted). Nothing was read through it; "
            f"move {wal.name} and {path.name}-shm away to open the ledger as its file holds it")
