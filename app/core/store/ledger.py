"""The ledger: append-only, hash-chained writes of generation rows, and verification.

One Ledger object owns one write connection to a database; its writes are serialized by a lock and
each append is one IMMEDIATE transaction that reads the chain head, inserts and moves the head, so
the several connections that append to the same file (the model thread, the server, batch runs,
imports, the CLI, in one process or several) still produce one consistent chain.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid as uuid_module
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from app.core.cancel import NEVER, CancelToken
from app.core.errors import LedgerError
from app.core.progress import Progress, drive
from app.core.store.chain import coerce, row_hash
from app.core.store.db import open_db, translate_errors
from app.core.store.heads import check_heads
from app.core.store.schema import (
    GENERATION_COLUMNS,
    GENERATIONS_TABLE,
    GENESIS_HASH,
    SOURCES,
    STATUSES,
    WRITABLE_COLUMNS,
)
from app.core.store.tree import append_leaves
from app.core.textnorm import content_hash

VERIFY_CHUNK = 5_000
RECENT_HASHES = 10_000
VERIFY_STAGE = "verify"
_COLUMN_LIST = ", ".join(GENERATION_COLUMNS)
_INSERT_SQL = (
    f"INSERT INTO {GENERATIONS_TABLE} ({_COLUMN_LIST}) "
    f"VALUES ({', '.join('?' for _ in GENERATION_COLUMNS)})"
)
_HEAD_SQL = (
    "INSERT INTO ledger_head (id, last_id, last_hash, row_count, updated_at) VALUES (1, ?, ?, ?, ?) "
    "ON CONFLICT(id) DO UPDATE SET last_id=excluded.last_id, last_hash=excluded.last_hash, "
    "row_count=excluded.row_count, updated_at=excluded.updated_at"
)


def utc_now() -> str:
    """Current UTC time as ISO 8601 with microseconds, the ledger's time format."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of a chain verification.

    ok: the chain is intact. head_hash/head_id: the last row's hash and id (the chain head).
    bad_id: the first row id where the chain breaks (for a removed row, the missing id).
    problem: a sentence saying what is wrong with that row.
    """

    ok: bool
    rows: int
    head_id: int | None
    head_hash: str | None
    bad_id: int | None = None
    problem: str | None = None


class Ledger:
    """Appends generations to, and verifies, the hash-chained log of one database file."""

    def __init__(self, db: Database, path: Path | str | None = None) -> None:
        self.db = db
        self.path = Path(path) if path else Path(db.execute("PRAGMA database_list").fetchone()[2])
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path | str) -> Ledger:
        """Open the ledger database at `path` (created and migrated if needed)."""
        return cls(open_db(path), path)

    def close(self) -> None:
        """Close the write connection."""
        self.db.close()

    # -- writing ---------------------------------------------------------------------------

    def append(self, record: Mapping[str, Any]) -> int:
        """Append one generation row; returns its id. Committed when this returns."""
        return self.append_many([record])[0]

    def append_many(self, records: Iterable[Mapping[str, Any]]) -> list[int]:
        """Append rows in one transaction (all or none); returns their ids in order."""
        rows = [prepare_row(record) for record in records]
        if not rows:
            return []
        conn = self.db.conn
        with self._lock, translate_errors(self.path):
            if conn.in_transaction:
                conn.commit()
            conn.execute("BEGIN IMMEDIATE")
            try:
                last_id, last_hash, count = self._head(conn)
                ids: list[int] = []
                for row in rows:
                    last_id += 1
                    row["id"] = last_id
                    row["prev_hash"] = last_hash
                    row["row_hash"] = last_hash = row_hash(row)
                    conn.execute(_INSERT_SQL, [row[name] for name in GENERATION_COLUMNS])
                    ids.append(last_id)
                append_leaves(conn, rows)
                conn.execute(_HEAD_SQL, (last_id, last_hash, count + len(rows), utc_now()))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return ids

    @staticmethod
    def _head(conn: sqlite3.Connection) -> tuple[int, str, int]:
        found = conn.execute("SELECT last_id, last_hash, row_count FROM ledger_head WHERE id = 1").fetchone()
        return (found[0], found[1], found[2]) if found else (0, GENESIS_HASH, 0)

    def head(self) -> tuple[int, str, int]:
        """The recorded chain head: (last id, last hash, row count); (0, genesis, 0) when empty."""
        with translate_errors(self.path):
            return self._head(self.db.conn)

    # -- verifying -------------------------------------------------------------------------

    def verify(self, cancel: CancelToken = NEVER) -> VerifyResult:
        """Recompute the whole chain and return the result (see iter_verify)."""
        result = drive(self.iter_verify(cancel))
        if result is None:
            raise LedgerError(f"{self.path}: verification was cancelled")
        return result

    def iter_verify(self, cancel: CancelToken = NEVER) -> Generator[Progress, None, VerifyResult | None]:
        """Walk the chain in id order, yielding Progress ('verify': rows checked of all) per chunk;
        returns the VerifyResult (None when cancelled).

        Detects an edited row (its hash no longer matches), a removed row (a gap or a broken
        link), an inserted or reordered row (a link to the wrong predecessor) and rows removed
        from or added to the end (the recorded head disagrees). Stops early on cancel.
        """
        conn = self.db.conn
        with translate_errors(self.path):
            total = conn.execute(f"SELECT count(*) FROM {GENERATIONS_TABLE}").fetchone()[0]
            head_id, head_hash, _ = self._head(conn)
            has_head = conn.execute("SELECT 1 FROM ledger_head WHERE id = 1").fetchone() is not None
        expected_id, expected_prev, checked = 1, GENESIS_HASH, 0
        last_seen: tuple[int, str] | None = None
        recent: dict[str, int] = {}  # hash -> id of the last rows, to name an inserted row
        names = list(GENERATION_COLUMNS)
        while True:
            if cancel.cancelled:
                return None
            with translate_errors(self.path):
                chunk = conn.execute(
                    f"SELECT {_COLUMN_LIST} FROM {GENERATIONS_TABLE} WHERE id >= ? ORDER BY id LIMIT ?",
                    (expected_id, VERIFY_CHUNK),
                ).fetchall()
            if not chunk:
                break
            for values in chunk:
                row = dict(zip(names, values))
                rid = row["id"]
                if rid != expected_id:
                    return self._broken(checked, last_seen, expected_id,
                                        f"row {expected_id} is missing: it was removed "
                                        f"(the log jumps from row {expected_id - 1} to row {rid})")
                if row["prev_hash"] != expected_prev:
                    earlier = recent.get(row["prev_hash"])
                    if earlier is not None:
                        return self._broken(checked, last_seen, earlier + 1,
                                            f"row {earlier + 1} was inserted: row {rid} links to row {earlier}")
                    return self._broken(checked, last_seen, rid,
                                        f"row {rid} does not link to row {rid - 1}: rows were reordered, "
                                        "or a row was inserted or rewritten")
                if row_hash(row) != row["row_hash"]:
                    return self._broken(checked, last_seen, rid,
                                        f"row {rid} was edited: its content no longer matches its hash")
                expected_id, expected_prev = rid + 1, row["row_hash"]
                recent[row["row_hash"]] = rid
                if len(recent) > RECENT_HASHES:
                    recent.pop(next(iter(recent)))
                last_seen = (rid, row["row_hash"])
                checked += 1
            yield Progress(VERIFY_STAGE, checked, total)
        if checked and not has_head:
            return self._broken(checked, last_seen, 1, "the chain head record is missing")
        if last_seen is None and head_id:
            return self._broken(checked, None, 1, f"all rows were removed (the head records row {head_id})")
        if last_seen is not None and last_seen[0] < head_id:
            return self._broken(checked, last_seen, last_seen[0] + 1,
                                f"row {last_seen[0] + 1} is missing: rows were removed from the end "
                                f"(the chain head records row {head_id})")
        if last_seen is not None and (last_seen[0] > head_id or last_seen[1] != head_hash):
            bad = head_id + 1 if last_seen[0] > head_id else last_seen[0]
            return self._broken(checked, last_seen, bad,
                                f"row {bad} was added or changed outside Stillroom "
                                f"(the chain head records row {head_id})")
        with translate_errors(self.path):
            remembered = check_heads(conn, self.path)
        if remembered:
            more = f" (and {len(remembered) - 1} more)" if len(remembered) > 1 else ""
            first = remembered[0]
            bad = first.row if first.row is not None else (last_seen[0] if last_seen else 1)
            return self._broken(checked, last_seen, bad, first.text + more)
        return VerifyResult(True, checked, last_seen[0] if last_seen else None,
                            last_seen[1] if last_seen else None)

    @staticmethod
    def _broken(checked: int, last_seen: tuple[int, str] | None, bad_id: int, problem: str) -> VerifyResult:
        return VerifyResult(False, checked, last_seen[0] if last_seen else None,
                            last_seen[1] if last_seen else None, bad_id, problem)


def prepare_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and complete a generation record for insertion (uuid, times, hashes, types)."""
    unknown = set(record) - set(WRITABLE_COLUMNS)
    if unknown:
        raise ValueError(f"unknown generation fields: {', '.join(sorted(unknown))}")
    row: dict[str, Any] = {name: record.get(name) for name in WRITABLE_COLUMNS}
    if row["source"] not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {row['source']!r}")
    row["status"] = row["status"] or "ok"
    if row["status"] not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {row['status']!r}")
    row["uuid"] = row["uuid"] or str(uuid_module.uuid4())
    row["started_at"] = row["started_at"] or utc_now()
    row["finished_at"] = row["finished_at"] or row["started_at"]
    if row["prompt_hash"] is None:
        row["prompt_hash"] = content_hash(row["prompt"])
    if row["response_hash"] is None:
        row["response_hash"] = content_hash(row["response"])
    for name in WRITABLE_COLUMNS:
        row[name] = coerce(name, row[name])
    return row
