"""The event log: what happened on this machine besides generations (exports, imports, statements
written, API keys created or revoked, models added or removed, settings changed, backups).

Events are rows of the `events` table, hash-chained like the generation log (its own chain, its
own head in `event_head`, the same row hash as app.core.store.chain). record_event() is called by
the core function that did the work, so the CLI and the app both log it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from app.core.store.chain import dump_json, row_hash
from app.core.store.db import open_db, translate_errors
from app.core.store.ledger import utc_now
from app.core.store.schema import EVENT_CHAIN_COLUMNS, EVENT_COLUMNS, EVENT_HEAD_TABLE, EVENTS_TABLE, GENESIS_HASH

EVENT_KINDS = (
    "export", "import", "statement", "key_created", "key_revoked", "model_added", "model_removed",
    "settings_changed", "backup",
)
VERIFY_CHUNK = 5_000
_COLUMN_LIST = ", ".join(EVENT_COLUMNS)
_INSERT_SQL = f"INSERT INTO {EVENTS_TABLE} ({_COLUMN_LIST}) VALUES ({', '.join('?' for _ in EVENT_COLUMNS)})"
_HEAD_SQL = (
    f"INSERT INTO {EVENT_HEAD_TABLE} (id, last_id, last_hash, row_count, updated_at) VALUES (1, ?, ?, ?, ?) "
    "ON CONFLICT(id) DO UPDATE SET last_id=excluded.last_id, last_hash=excluded.last_hash, "
    "row_count=excluded.row_count, updated_at=excluded.updated_at"
)
_write_lock = threading.Lock()


@dataclass(frozen=True)
class Event:
    """One event as read back: details decoded from JSON."""

    id: int
    at: str
    kind: str
    summary: str
    details: dict[str, Any]
    row_hash: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the event."""
        return {"id": self.id, "at": self.at, "kind": self.kind, "summary": self.summary,
                "details": self.details, "row_hash": self.row_hash}


@dataclass(frozen=True)
class EventVerifyResult:
    """The outcome of walking the event chain; bad_id and problem name the first broken event."""

    ok: bool
    rows: int
    head_id: int | None
    head_hash: str | None
    bad_id: int | None = None
    problem: str | None = None


def record_event(db: Database, kind: str, summary: str, details: Mapping[str, Any] | None = None) -> int:
    """Append one event to the chain; returns its id.

    Outside a transaction the event is its own IMMEDIATE transaction, committed when this returns.
    Inside a transaction that has already written (the caller's change), the event joins it and is
    committed, or rolled back, with that change.
    """
    if kind not in EVENT_KINDS:
        raise ValueError(f"event kind must be one of {', '.join(EVENT_KINDS)}, got {kind!r}")
    row: dict[str, Any] = {"at": utc_now(), "kind": kind, "summary": str(summary),
                           "details": dump_json(dict(details or {}))}
    conn = db.conn
    with _write_lock, translate_errors(EVENTS_TABLE):
        own = not conn.in_transaction
        if own:
            conn.execute("BEGIN IMMEDIATE")
        try:
            last_id, last_hash, count = _head(conn)
            row["id"] = last_id + 1
            row["prev_hash"] = last_hash
            row["row_hash"] = row_hash(row, EVENT_CHAIN_COLUMNS)
            conn.execute(_INSERT_SQL, [row[name] for name in EVENT_COLUMNS])
            conn.execute(_HEAD_SQL, (row["id"], row["row_hash"], count + 1, row["at"]))
            if own:
                conn.execute("COMMIT")
        except BaseException:
            if own and conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return int(row["id"])


def _head(conn: sqlite3.Connection) -> tuple[int, str, int]:
    found = conn.execute(f"SELECT last_id, last_hash, row_count FROM {EVENT_HEAD_TABLE} WHERE id = 1").fetchone()
    return (found[0], found[1], found[2]) if found else (0, GENESIS_HASH, 0)


def list_events(db: Database, *, limit: int | None = None, kind: str | None = None) -> list[Event]:
    """Events, newest first; at most `limit` of them, only of `kind` when given."""
    sql = f"SELECT id, at, kind, summary, details, row_hash FROM {EVENTS_TABLE}"
    params: list[Any] = []
    if kind:
        sql += " WHERE kind = ?"
        params.append(kind)
    sql += " ORDER BY id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    with translate_errors(EVENTS_TABLE):
        rows = db.execute(sql, params).fetchall()
    return [Event(rid, at, kind_, summary or "", _decode(details), digest)
            for rid, at, kind_, summary, details, digest in rows]


def _decode(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {"unreadable_details": text}
    return value if isinstance(value, dict) else {"details": value}


def verify_events(db: Database) -> EventVerifyResult:
    """Walk the event chain in id order and return its EventVerifyResult: the first break, or ok.

    Finds an edited event (its hash no longer matches), a removed one (a gap), an inserted or
    reordered one (a wrong link) and events removed from or added at the end (the head disagrees).
    """
    conn = db.conn
    with translate_errors(EVENTS_TABLE):
        head_id, head_hash, _ = _head(conn)
    expected_id, expected_prev, checked = 1, GENESIS_HASH, 0
    last: tuple[int, str] | None = None
    names = list(EVENT_COLUMNS)

    def broken(bad: int, problem: str) -> EventVerifyResult:
        return EventVerifyResult(False, checked, last[0] if last else None, last[1] if last else None, bad, problem)

    while True:
        with translate_errors(EVENTS_TABLE):
            chunk = conn.execute(f"SELECT {_COLUMN_LIST} FROM {EVENTS_TABLE} WHERE id >= ? ORDER BY id LIMIT ?",
                                 (expected_id, VERIFY_CHUNK)).fetchall()
        if not chunk:
            break
        for values in chunk:
            row = dict(zip(names, values))
            rid = row["id"]
            if rid != expected_id:
                return broken(expected_id, f"event {expected_id} is missing: it was removed")
            if row["prev_hash"] != expected_prev:
                return broken(rid, f"event {rid} does not link to event {rid - 1}: events were inserted, "
                                   "reordered or rewritten")
            if row_hash(row, EVENT_CHAIN_COLUMNS) != row["row_hash"]:
                return broken(rid, f"event {rid} was edited: its content no longer matches its hash")
            expected_id, expected_prev = rid + 1, row["row_hash"]
            last = (rid, row["row_hash"])
            checked += 1
    if last is None and head_id:
        return broken(1, f"all events were removed (the event head records event {head_id})")
    if last is not None and last[0] < head_id:
        return broken(last[0] + 1, f"event {last[0] + 1} is missing: events were removed from the end "
                                   f"(the event head records event {head_id})")
    if last is not None and (last[0] > head_id or last[1] != head_hash):
        bad = head_id + 1 if last[0] > head_id else last[0]
        return broken(bad, f"event {bad} was added or changed outside Stillroom "
                           f"(the event head records event {head_id})")
    return EventVerifyResult(True, checked, last[0] if last else None, last[1] if last else None)


def record_event_at(path: Path | str, kind: str, summary: str, details: Mapping[str, Any] | None = None) -> int:
    """record_event() on a write connection of its own to the ledger at `path` (for work that only
    held a read-only connection, or none)."""
    db = open_db(path)
    try:
        return record_event(db, kind, summary, details)
    finally:
        db.close()
