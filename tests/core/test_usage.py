"""Usage statistics over a small ledger with known timestamps, from the trigger-kept daily aggregate."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from app.core.store import Ledger
from app.core.store.usage import NO_WORKFLOW, usage_report, usage_window, window_start
from tests.core.records import record

TODAY = date(2026, 3, 31)
ALPHA, BETA = "a" * 64, "b" * 64


def _row(i: int, when: str, **overrides) -> dict:
    return record(i, started_at=when, **overrides)


@pytest.fixture
def ledger(tmp_path: Path):
    opened = Ledger.open(tmp_path / "ledger.db")
    opened.append_many([
        # today: two alpha chat rows, one beta batch row that failed
        _row(1, "2026-03-31T09:00:00+00:00", source="chat", workflow="essays", prompt_tokens=10,
             completion_tokens=100, duration_ms=1000.0),
        _row(2, "2026-03-31T23:59:59+00:00", source="chat", workflow="essays", prompt_tokens=20,
             completion_tokens=200, duration_ms=2000.0),
        _row(3, "2026-03-31T01:30:00+02:00", source="batch", workflow="grading", model_sha256=BETA,
             model_name="Beta", prompt_tokens=5, completion_tokens=1, duration_ms=50.0, status="error"),
        # 10 days ago (inside 30, outside 7)
        _row(4, "2026-03-21T12:00:00+00:00", source="server", workflow=None, prompt_tokens=7,
             completion_tokens=3, duration_ms=300.0),
        # 60 days ago (inside 90)
        _row(5, "2026-01-30T12:00:00+00:00", source="import", workflow="imported", prompt_tokens=1,
             completion_tokens=1, duration_ms=None),
        # a year ago (all time only)
        _row(6, "2025-03-31T12:00:00+00:00", source="cli", workflow="essays", prompt_tokens=1000,
             completion_tokens=2000, duration_ms=10000.0),
    ])
    yield opened
    opened.close()


def test_window_start_counts_today() -> None:
    assert window_start(7, TODAY) == "2026-03-25"
    assert window_start(1, TODAY) == "2026-03-31"
    assert window_start(None, TODAY) is None
    with pytest.raises(ValueError):
        window_start(0, TODAY)


def test_totals_per_window(ledger: Ledger) -> None:
    w7, w30, w90, all_time = usage_report(ledger.db, today=TODAY)
    # row 3 started 01:30+02:00, i.e. 23:30 UTC on the 30th: inside 7 days, counted on the 30th
    assert (w7.totals.generations, w7.totals.prompt_tokens, w7.totals.completion_tokens) == (3, 35, 301)
    assert w7.totals.errors == 1 and w7.totals.duration_ms == 3050.0
    assert (w30.totals.generations, w30.totals.total_tokens) == (4, 346)
    assert (w90.totals.generations, w90.totals.total_tokens) == (5, 348)
    assert (all_time.totals.generations, all_time.totals.total_tokens) == (6, 3348)
    assert w7.daily == [] and w90.daily == []  # only the widest window carries the per-day series
    assert [day for day, _ in all_time.daily] == ["2025-03-31", "2026-01-30", "2026-03-21", "2026-03-30", "2026-03-31"]
    assert dict(all_time.daily)["2026-03-31"].completion_tokens == 300
    assert [d for d, _ in usage_window(ledger.db, 7, today=TODAY).daily] == ["2026-03-30", "2026-03-31"]


def test_groups_per_model_workflow_and_source(ledger: Ledger) -> None:
    w7 = usage_window(ledger.db, 7, today=TODAY)
    models = {g.key: (g.label, g.totals.generations, g.totals.total_tokens) for g in w7.groups["model"]}
    assert models == {ALPHA: ("Test Model · aaaaaaaa", 2, 330), BETA: ("Beta · bbbbbbbb", 1, 6)}
    assert [g.label for g in w7.groups["model"]] == ["Test Model · aaaaaaaa", "Beta · bbbbbbbb"]
    workflows = {g.label: g.totals.generations for g in usage_window(ledger.db, 30, today=TODAY).groups["workflow"]}
    assert workflows == {"essays": 2, "grading": 1, NO_WORKFLOW: 1}
    sources = {g.key: g.totals.completion_tokens for g in usage_window(ledger.db, None, today=TODAY).groups["source"]}
    assert sources == {"chat": 300, "batch": 1, "server": 3, "import": 1, "cli": 2000}


def test_aggregate_matches_a_scan_of_the_log(ledger: Ledger) -> None:
    ledger.append_many([record(i, started_at=f"2026-02-{1 + i % 28:02d}T10:00:00+00:00") for i in range(100)])
    scan = ledger.db.execute("SELECT count(*), sum(prompt_tokens), sum(completion_tokens) FROM generations").fetchone()
    totals = usage_window(ledger.db, None, today=TODAY).totals
    assert (totals.generations, totals.prompt_tokens, totals.completion_tokens) == tuple(scan)


def test_migration_fills_the_aggregate_from_rows_logged_before_it(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = Ledger.open(path)
    ledger.append_many([record(i, started_at="2026-03-30T10:00:00+00:00") for i in range(4)])
    ledger.close()
    conn = sqlite3.connect(path)  # back to a ledger from before the aggregate existed
    conn.executescript("DROP TRIGGER generations_usage_daily; DROP TABLE usage_daily; "
                       "DELETE FROM _sqlite_migrations WHERE name = 'm010_usage_daily';")
    conn.close()
    reopened = Ledger.open(path)
    totals = usage_window(reopened.db, 7, today=TODAY).totals
    reopened.close()
    assert (totals.generations, totals.prompt_tokens) == (4, 48)
