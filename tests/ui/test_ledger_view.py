"""The Ledger view: lazy table, search and filters, detail pane, export, verification."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelectionModel, Qt

from app.ui.dialogs import INFO_DIALOG
from app.ui.ledger.ledger_model import PAGE_SIZE, PROMPT_COLUMN
from app.ui.main_window import MainWindow
from tests.ui.helpers import ledger_rows, open_dialogs, seed_rows


def settle(qtbot: Any, window: MainWindow) -> None:
    """Wait until the table's count is in and no database job is queued."""
    qtbot.waitUntil(lambda: not window.ledger.model.loading and window.db.pending == 0, timeout=10_000)


def test_table_counts_searches_and_filters(qtbot: Any, home: Path, make_window: Any) -> None:
    seed_rows(home, 300)
    window = make_window()
    window.show_view("ledger")
    view, model = window.ledger, window.ledger.model
    assert model.rowCount() == 300
    assert view.count_label.text() == "300 generations"
    assert model.summary(0).id == 300  # newest first
    # widget -> model: typing a search (Ctrl+F focuses it) filters through the FTS index
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert view.filters.search.hasFocus()
    qtbot.keyClicks(view.filters.search, "zebras")
    qtbot.waitUntil(lambda: model.filter.search == "zebras", timeout=5_000)
    settle(qtbot, window)
    assert model.rowCount() == 30
    assert view.count_label.text() == "30 generations match"
    assert all("zebras" in model.summary(row).cells[PROMPT_COLUMN] for row in range(30))
    # status and workflow filters combine with the search
    view.filters.status.setCurrentIndex(view.filters.status.findData("error"))
    settle(qtbot, window)
    expected = len([n for n in range(1, 301) if n % 10 == 0 and n % 7 == 0])
    assert model.rowCount() == expected and model.filter.status == "error"
    view.filters.clear()
    settle(qtbot, window)
    qtbot.waitUntil(lambda: view.filters.workflow.count() == 4, timeout=5_000)  # Any + 3 workflows
    view.filters.workflow.setCurrentIndex(view.filters.workflow.findData("wf-1"))
    settle(qtbot, window)
    assert model.rowCount() == 100
    assert {model.summary(row).cells[3] for row in range(100)} == {"wf-1"}
    view.filters.workflow.setCurrentIndex(0)
    view.filters.source.setCurrentIndex(view.filters.source.findData("chat"))
    settle(qtbot, window)
    assert model.rowCount() == 0 and view.count_label.text() == "0 generations match"
    # model filter offers the logged model
    assert view.filters.model.findData("ab" * 32) > 0


def test_date_filter_keeps_today_and_drops_older_rows(qtbot: Any, home: Path, make_window: Any) -> None:
    seed_rows(home, 5, started_at="2020-01-02T10:00:00.000000+00:00")
    seed_rows(home, 3)
    window = make_window()
    view = window.ledger
    view.filters.dates.setCurrentIndex(1)  # Today
    settle(qtbot, window)
    assert view.model.rowCount() == 3
    view.filters.dates.setCurrentIndex(view.filters.dates.count() - 1)  # Custom
    view.filters.since.setDate(view.filters.since.date().fromString("2020-01-01", "yyyy-MM-dd"))
    view.filters.until.setDate(view.filters.until.date().fromString("2020-01-03", "yyyy-MM-dd"))
    settle(qtbot, window)
    assert view.model.rowCount() == 5


def test_rows_are_fetched_lazily_by_page(qtbot: Any, home: Path, make_window: Any) -> None:
    seed_rows(home, 5 * PAGE_SIZE + 7)
    window = make_window()
    window.show_view("ledger")
    model, table = window.ledger.model, window.ledger.table
    assert model.rowCount() == 5 * PAGE_SIZE + 7
    assert len(model._pages) <= 2  # opening fetched the first page, not the table
    assert not model.is_loaded(model.rowCount() - 1)
    table.scrollToBottom()
    qtbot.waitUntil(lambda: model.is_loaded(model.rowCount() - 1), timeout=5_000)
    assert model.summary(model.rowCount() - 1).id == 1
    assert len(model._pages) <= 3
    # the header toggles the order
    table.horizontalHeader().sectionClicked.emit(0)
    settle(qtbot, window)
    assert model.summary(0).id == 1 and not model.newest_first


def test_selecting_a_row_shows_its_request_and_response(qtbot: Any, home: Path, make_window: Any) -> None:
    seed_rows(home, 3, messages=[{"role": "user", "content": "hi"}], mode="chat", params={"temperature": 0.3})
    window = make_window()
    view = window.ledger
    view.table.selectRow(1)
    qtbot.waitUntil(lambda: view.detail.row is not None and view.detail.row["id"] == 2, timeout=5_000)
    request = json.loads(view.detail.request.toPlainText())
    assert request["messages"] == [{"role": "user", "content": "hi"}]
    assert request["params"] == {"temperature": 0.3}
    assert request["model"]["sha256"] == "ab" * 32
    assert view.detail.response.toPlainText() == "answer 2"
    record = json.loads(view.detail.record.toPlainText())
    assert record["id"] == 2 and len(record["row_hash"]) == 64
    assert "Generation #2" in view.detail.heading.text()


def test_new_rows_appear_while_the_view_is_open(qtbot: Any, home: Path, make_window: Any) -> None:
    seed_rows(home, 10)
    window = make_window()
    view = window.ledger
    view.table.selectRow(0)
    seed_rows(home, 2)
    view.refresh()
    qtbot.waitUntil(lambda: view.model.rowCount() == 12, timeout=5_000)
    qtbot.waitUntil(lambda: view.model.summary(0) is not None, timeout=5_000)
    assert view.model.summary(0).id == 12
    assert view.model.summary(view.table.currentIndex().row()).id == 10  # the selection stays on its row
    assert view.count_label.text() == "12 generations"


def test_verify_reports_intact_then_jumps_to_the_first_edited_row(qtbot: Any, home: Path, make_window: Any) -> None:
    seed_rows(home, 60)
    window = make_window()
    qtbot.waitUntil(lambda: window.status.chain_label.text() == "Chain: intact ✓", timeout=10_000)
    view = window.ledger
    with qtbot.waitSignal(view.verified, timeout=10_000) as verified:
        qtbot.mouseClick(view.verify_button, Qt.MouseButton.LeftButton)
    assert verified.args[0].ok and verified.args[0].rows == 60
    qtbot.waitUntil(lambda: bool(open_dialogs(window, INFO_DIALOG)), timeout=5_000)
    assert "intact" in open_dialogs(window, INFO_DIALOG)[0].text()
    open_dialogs(window, INFO_DIALOG)[0].close()
    conn = sqlite3.connect(home / "ledger.db")
    conn.execute("UPDATE generations SET response = 'rewritten' WHERE id = 17")
    conn.commit()
    conn.close()
    view.filters.set_search("zebras")  # the jump clears filters that would hide the row
    settle(qtbot, window)
    with qtbot.waitSignal(view.verified, timeout=10_000) as verified:
        window.status.chain_label.clicked.emit()
    result = verified.args[0]
    assert not result.ok and result.bad_id == 17
    qtbot.waitUntil(lambda: view.table.currentIndex().isValid()
                    and view.model.summary(view.table.currentIndex().row()) is not None
                    and view.model.summary(view.table.currentIndex().row()).id == 17, timeout=5_000)
    assert view.filters.search.text() == ""
    assert window.status.chain_label.text() == "Chain: broken at row 17"
    assert any("row 17" in box.text() for box in open_dialogs(window, INFO_DIALOG))
    qtbot.waitUntil(lambda: view.detail.row is not None and view.detail.row["id"] == 17, timeout=5_000)


def test_export_filtered_rows_and_the_selection(qtbot: Any, home: Path, make_window: Any, tmp_path: Path) -> None:
    seed_rows(home, 40)
    window = make_window()
    view = window.ledger
    view.filters.status.setCurrentIndex(view.filters.status.findData("error"))
    settle(qtbot, window)
    out = tmp_path / "errors.jsonl"
    assert view.export_to(out, "jsonl", selection_only=False) is not None
    qtbot.waitUntil(lambda: not view.exports.busy, timeout=10_000)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["id"] for row in lines] == [7, 14, 21, 28, 35]
    assert all(row["status"] == "error" for row in lines)
    qtbot.waitUntil(lambda: bool(open_dialogs(window, INFO_DIALOG)), timeout=5_000)
    assert "5 records" in open_dialogs(window, INFO_DIALOG)[0].text() or \
        "5 records" in open_dialogs(window, INFO_DIALOG)[0].informativeText()
    view.filters.clear()
    settle(qtbot, window)
    selection = view.table.selectionModel()
    selection.clearSelection()
    for row in (0, 1, 5):
        selection.select(view.model.index(row, 0),
                         QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
    md = tmp_path / "picked.md"
    assert view.export_to(md, "markdown", selection_only=True) is not None
    qtbot.waitUntil(lambda: not view.exports.busy, timeout=10_000)
    text = md.read_text()
    assert [line for line in text.splitlines() if line.startswith("## Generation")] == \
        ["## Generation 35", "## Generation 39", "## Generation 40"]
    assert len(ledger_rows(home)) == 40
