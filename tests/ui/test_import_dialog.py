"""File > Import…: a dataset into the ledger on its own thread; malformed input is reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt

from app.ui.import_dialog import ImportDialog
from app.ui.main_window import MainWindow
from tests.ui.helpers import ledger_rows

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "import"


def run_import(qtbot: Any, window: MainWindow, file: Path, workflow: str, fmt: str = "auto") -> ImportDialog:
    window.import_action.trigger()
    dialog = window.findChild(ImportDialog)
    assert dialog is not None and dialog.isVisible() and not dialog.import_button.isEnabled()
    dialog.file_edit.setText(str(file))
    qtbot.keyClicks(dialog.workflow_edit, workflow)
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData(fmt))
    qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.jobs.busy, timeout=20_000)
    return dialog


def test_import_writes_rows_that_the_ledger_view_shows(qtbot: Any, window: MainWindow, home: Path) -> None:
    dialog = run_import(qtbot, window, FIXTURES / "pairs.jsonl", "imported-pairs")
    assert dialog.error is None and dialog.summary is not None
    written = dialog.summary.rows_written
    rows = ledger_rows(home, "SELECT * FROM generations WHERE source = 'import'")
    assert written == len(rows) > 0 and {row["workflow"] for row in rows} == {"imported-pairs"}
    assert f"{written} rows written" in dialog.result.toPlainText() and dialog.strip.bar.value() == 100
    # model -> widget: the ledger view picks the rows up
    qtbot.waitUntil(lambda: window.ledger.model.rowCount() == written, timeout=5_000)
    dialog.close()


def test_malformed_records_are_listed_with_their_positions(qtbot: Any, window: MainWindow, home: Path) -> None:
    dialog = run_import(qtbot, window, FIXTURES / "malformed_messages.jsonl", "partly-broken", "openai-messages")
    assert dialog.summary is not None and dialog.summary.malformed > 0
    assert "line 2" in dialog.result.toPlainText() and "malformed" in dialog.result.toPlainText()
    dialog.close()


def test_a_file_in_no_known_format_shows_an_error_and_writes_nothing(qtbot: Any, window: MainWindow, home: Path,
                                                                    tmp_path: Path) -> None:
    bad = tmp_path / "notes.jsonl"
    bad.write_text("this is not json\nnor is this\n", encoding="utf-8")
    dialog = run_import(qtbot, window, bad, "nothing")
    assert dialog.error and dialog.summary is None
    assert "cannot be imported" in dialog.result.toPlainText() and "not changed" in dialog.result.toPlainText()
    assert ledger_rows(home) == []
    dialog.close()


def test_a_file_whose_every_record_is_malformed_says_nothing_was_imported(qtbot: Any, window: MainWindow,
                                                                         home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "surrogates.jsonl"  # records that read, but whose text (a lone surrogate) cannot be stored
    bad.write_text("".join('{"prompt": "half \\ud800 a pair", "response": "x"}\n' for _ in range(2)), encoding="utf-8")
    dialog = run_import(qtbot, window, bad, "broken")
    assert dialog.summary is not None and dialog.summary.rows_written == 0
    assert dialog.status_label.text().startswith(
        "Nothing imported: surrogates.jsonl: every one of its 2 records is malformed (first: line 1:")
    assert ledger_rows(home) == []
    dialog.close()
