"""The Usage view and the Ledger view's Events tab and Back up action, on a real ledger and a real
DbExecutor (no model needed): a day's work shows up in both."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox

from app.core.serve.api_keys import create_key
from app.core.store import Ledger
from app.core.store.export import export_rows, record_export
from app.core.store.queries import LogFilter, iter_generations
from app.ui.dialogs import ERROR_DIALOG, INFO_DIALOG
from app.ui.ledger.ledger_view import LedgerView
from app.ui.usage import UsageView
from app.workers.db_executor import DbExecutor
from tests.core.records import record

ALPHA, BETA = "a" * 64, "b" * 64


def _at(delta: timedelta) -> str:
    return (datetime.now(timezone.utc) - delta).isoformat(timespec="microseconds")


@pytest.fixture
def day_of_work(tmp_path: Path) -> Path:
    """A ledger with today's work (3 chat rows on one model, 2 batch rows on another, one failed),
    one row 40 days ago, an API key and an export."""
    path = tmp_path / "ledger.db"
    ledger = Ledger.open(path)
    today = [record(i, started_at=_at(timedelta(minutes=i)), source="chat", workflow="essays",
                    prompt_tokens=10, completion_tokens=100, duration_ms=1000.0) for i in range(3)]
    today += [record(10 + i, started_at=_at(timedelta(minutes=i)), source="batch", workflow="grading",
                     model_sha256=BETA, model_name="Grader", prompt_tokens=50, completion_tokens=1,
                     duration_ms=20.0, status="error" if i else "ok") for i in range(2)]
    old = [record(99, started_at=_at(timedelta(days=40)), source="cli", workflow="essays",
                  prompt_tokens=1000, completion_tokens=1000, duration_ms=5000.0)]
    ledger.append_many(today + old)
    create_key(ledger.db, "evals", "grading")
    out = tmp_path / "essays.jsonl"
    count = export_rows(iter_generations(ledger.db, LogFilter(workflow="essays")), "jsonl", out)
    record_export(ledger.db, out, "jsonl", count, {"workflow": "essays"})
    ledger.close()
    return path


@pytest.fixture
def executor(day_of_work: Path) -> Iterator[DbExecutor]:
    db = DbExecutor(day_of_work)
    db.start()
    yield db
    db.stop()


def test_usage_view_shows_a_days_work(qtbot: Any, day_of_work: Path, executor: DbExecutor) -> None:
    view = UsageView(executor)
    qtbot.addWidget(view)
    view.period.setCurrentText("Last 7 days")
    view.show()  # model -> widget: shown, it reads the chosen period
    qtbot.waitUntil(lambda: view.window_data is not None and view.window_data.days == 7 and not view.loading,
                    timeout=10_000)
    assert "5 generations (1 not ok)" in view.summary.text()
    assert "130 prompt tokens" in view.summary.text() and "302 completion tokens" in view.summary.text()
    models = view.tables["model"]
    assert models.rowCount() == 2
    assert models.item(0, 0).text() == "Test Model · aaaaaaaa" and models.item(0, 1).text() == "3"
    assert models.item(1, 0).text() == "Grader · bbbbbbbb" and models.item(1, 2).text() == "1"
    sources = {view.tables["source"].item(r, 0).text(): view.tables["source"].item(r, 4).text()
               for r in range(view.tables["source"].rowCount())}
    assert sources == {"chat": "300", "batch": "2"}
    heights = np.asarray(view.tokens_bars.opts["height"])
    # seven days, all of the work on the last bar (or the last two, just after midnight UTC)
    assert len(heights) == 7 and heights.sum() == 432 and heights[-2:].sum() == 432
    _, generations = view.generations_line.getData()
    assert generations.sum() == 5
    # widget -> model: choosing all time reads again and takes in the row from 40 days ago
    view.period.setCurrentText("All time")
    qtbot.waitUntil(lambda: view.window_data.days is None and not view.loading, timeout=10_000)
    assert "6 generations" in view.summary.text()
    workflows = {view.tables["workflow"].item(r, 0).text(): view.tables["workflow"].item(r, 1).text()
                 for r in range(view.tables["workflow"].rowCount())}
    assert workflows == {"essays": "4", "grading": "2"}
    assert np.asarray(view.tokens_bars.opts["height"]).sum() == 2432
    # a generation logged meanwhile shows after ledger_changed
    ledger = Ledger.open(day_of_work)
    ledger.append(record(200, source="server", workflow="api", prompt_tokens=1, completion_tokens=1))
    ledger.close()
    view.ledger_changed()
    qtbot.waitUntil(lambda: not view.loading and view.window_data.totals.generations == 7, timeout=10_000)
    assert "7 generations" in view.summary.text()


def _boxes(widget: Any, name: str) -> list[QMessageBox]:
    return [box for box in widget.findChildren(QMessageBox) if box.objectName() == name and box.isVisible()]


def test_ledger_view_backs_up_and_lists_events(qtbot: Any, day_of_work: Path, executor: DbExecutor,
                                               tmp_path: Path) -> None:
    view = LedgerView(executor, day_of_work)
    qtbot.addWidget(view)
    view.show()
    out = tmp_path / "backups" / "ledger-copy.db"
    assert view.backup_to(out) is not None
    qtbot.waitUntil(lambda: not view.backups.busy, timeout=10_000)
    qtbot.waitUntil(lambda: bool(_boxes(view, INFO_DIALOG)), timeout=5_000)
    assert "6 generations" in _boxes(view, INFO_DIALOG)[0].text() + _boxes(view, INFO_DIALOG)[0].informativeText()
    for box in _boxes(view, INFO_DIALOG):
        box.close()
    copy = sqlite3.connect(out)
    assert copy.execute("SELECT count(*) FROM generations").fetchone()[0] == 6
    copy.close()
    # a second backup to the same file is refused, and says so
    assert view.backup_to(out) is not None
    qtbot.waitUntil(lambda: not view.backups.busy, timeout=10_000)
    qtbot.waitUntil(lambda: bool(_boxes(view, ERROR_DIALOG)), timeout=5_000)
    box = _boxes(view, ERROR_DIALOG)[0]
    assert "already exists" in box.text() + box.informativeText()
    box.close()
    # the Events tab lists the day's events, newest first, with the chain state
    view.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: view.events.table.rowCount() == 3 and "intact" in view.events.chain_label.text(),
                    timeout=10_000)
    kinds = [view.events.table.item(row, 2).text() for row in range(3)]
    assert kinds == ["backup", "export", "key_created"]
    assert "3 events, chain intact" in view.events.chain_label.text()
    assert str(out) in view.events.details.toPlainText()  # the newest event's details are shown
    view.events.table.selectRow(2)
    assert '"workflow": "grading"' in view.events.details.toPlainText()


def test_settings_changes_reach_the_event_log(qtbot: Any, tmp_path: Path) -> None:
    from app.core.models.sampling import SamplingParams
    from app.core.store.events import list_events
    from app.ui.settings import AppSettings
    from app.workers.model_service import ModelService

    path = tmp_path / "ledger.db"
    service = ModelService()
    with qtbot.waitSignal(service.ledger_ready, timeout=10_000):
        service.start(path)
    settings = AppSettings(tmp_path / "settings.ini")
    settings.on_change = lambda summary, details: service.record_event("settings_changed", summary, details)
    try:
        settings.theme = "dark"
        settings.set_sampling(SamplingParams())  # the defaults again: nothing changed, nothing logged
        settings.set_sampling(SamplingParams(temperature=0.2, top_k=7))
        settings.system_prompt = "Answer in French."
        settings.system_prompt = "Answer in French."  # unchanged

        def logged() -> list:
            reader = Ledger.open(path)
            try:
                return list_events(reader.db, kind="settings_changed")
            finally:
                reader.close()
        qtbot.waitUntil(lambda: len(logged()) == 3, timeout=10_000)
    finally:
        service.shutdown()
    events = logged()[::-1]
    assert events[0].details == {"theme": {"from": "system", "to": "dark"}}
    assert events[1].details == {"temperature": {"from": SamplingParams().temperature, "to": 0.2},
                                 "top_k": {"from": SamplingParams().top_k, "to": 7}}
    assert events[2].details == {"system_prompt_chars": {"from": 0, "to": 17}}
    assert "French" not in events[2].summary  # the prompt's text stays out of the log
