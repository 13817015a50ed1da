"""The event log: hash-chained events, tampering detected, and the core code paths that record them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from app.core.errors import NotFoundError
from app.core.serve.api_keys import create_key, revoke_key
from app.core.store import Ledger
from app.core.store.events import list_events, record_event, verify_events
from app.core.store.export import export_rows, record_export
from app.core.store.queries import LogFilter, iter_generations
from app.core.ingest import run_import
from tests.core.records import record


@pytest.fixture
def ledger(tmp_path: Path):
    opened = Ledger.open(tmp_path / "ledger.db")
    yield opened
    opened.close()


def test_events_chain_and_read_back_newest_first(ledger: Ledger) -> None:
    first = record_event(ledger.db, "settings_changed", "theme set to dark", {"theme": "dark"})
    second = record_event(ledger.db, "backup", "ledger backed up", {"path": "/x"})
    assert (first, second) == (1, 2)
    events = list_events(ledger.db)
    assert [e.kind for e in events] == ["backup", "settings_changed"]
    assert events[1].details == {"theme": "dark"}
    assert [e.id for e in list_events(ledger.db, limit=1)] == [2]
    assert [e.id for e in list_events(ledger.db, kind="settings_changed")] == [1]
    result = verify_events(ledger.db)
    assert result.ok and result.rows == 2 and result.head_id == 2 and result.head_hash == events[0].row_hash


def test_unknown_kind_is_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="event kind"):
        record_event(ledger.db, "coffee", "made coffee")
    assert list_events(ledger.db) == []


def _three_events(path: Path) -> None:
    ledger = Ledger.open(path)
    for i in range(3):
        record_event(ledger.db, "export", f"export {i}", {"n": i})
    ledger.close()


@pytest.mark.parametrize(("statement", "bad_id", "words"), [
    ("UPDATE events SET summary = 'nothing happened' WHERE id = 2", 2, "edited"),
    ("DELETE FROM events WHERE id = 2", 2, "missing"),
    ("DELETE FROM events WHERE id = 3", 3, "removed from the end"),
    ("UPDATE events SET kind = 'backup' WHERE id = 1", 1, "edited"),
])
def test_tampering_with_events_is_found(tmp_path: Path, statement: str, bad_id: int, words: str) -> None:
    path = tmp_path / "ledger.db"
    _three_events(path)
    conn = sqlite3.connect(path)
    conn.execute(statement)
    conn.commit()
    conn.close()
    ledger = Ledger.open(path)
    result = verify_events(ledger.db)
    ledger.close()
    assert not result.ok and result.bad_id == bad_id and words in (result.problem or "")


def test_key_created_and_revoked_are_logged(ledger: Ledger) -> None:
    key, secret = create_key(ledger.db, "evals", "grading")
    revoke_key(ledger.db, key.id)
    with pytest.raises(NotFoundError):
        revoke_key(ledger.db, key.id)  # already revoked: no second event
    events = list_events(ledger.db)
    assert [e.kind for e in events] == ["key_revoked", "key_created"]
    assert events[1].details["workflow"] == "grading" and events[1].details["prefix"] == key.prefix
    assert secret not in json.dumps([e.to_dict() for e in events])  # the secret is never logged
    assert verify_events(ledger.db).ok


def test_export_and_import_are_logged(ledger: Ledger, tmp_path: Path) -> None:
    ledger.append_many([record(i) for i in range(1, 4)])
    out = tmp_path / "out.jsonl"
    count = export_rows(iter_generations(ledger.db, LogFilter(workflow="tests")), "jsonl", out)
    record_export(ledger.db, out, "jsonl", count, {"workflow": "tests", "source": None})
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"p{i}", "response": f"r{i}"}) + "\n" for i in range(5)))
    summary = run_import(ledger, data, "imported")
    assert summary.rows_written == 5
    export_event, import_event = list_events(ledger.db)[::-1]
    assert export_event.kind == "export" and export_event.details["records"] == 3
    assert export_event.details["filters"] == {"workflow": "tests"}
    assert import_event.kind == "import" and import_event.details["rows_written"] == 5
    assert import_event.details["file_sha256"] == summary.file_sha256
    assert "data.jsonl" in import_event.summary
