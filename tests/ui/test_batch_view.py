"""Batch view: the form's preview, Start, progress to the total, output rows, pause and resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.ui.dialogs import CONFIRM_DIALOG

from app.ui.main_window import MainWindow
from tests.ui.helpers import ledger_rows

BATCH_TIMEOUT_MS = 60_000


def fill_form(qtbot: Any, window: MainWindow, name: str, inputs: list[str], output: Path) -> None:
    """Type a small job into the New job form, as a person would."""
    window.show_view("batch")
    form = window.batch.form
    qtbot.keyClicks(form.name_edit, name)
    form.template_edit.setPlainText("Q: Name a colour like {input}.\nA:")
    form.inputs_edit.setPlainText("\n".join(inputs))
    form.sampling.max_tokens.setValue(4)
    form.sampling.seed.setValue(7)
    form.output_edit.setText(str(output))


def start_outside_home(qtbot: Any, view: Any) -> None:
    """Click Start; the output (under the test's temporary folder, outside the home folder) is asked
    about first: confirm it with the dialog's own button."""
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    box = view.findChild(QMessageBox, CONFIRM_DIALOG)
    assert box is not None and "outside your home folder" in box.text()
    button = next(b for b in box.buttons() if b.text() == "Write there")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def wait_finished(qtbot: Any, view: Any) -> Any:
    """Wait for the run the view started to stop; returns its BatchFinished."""
    qtbot.waitUntil(lambda: view.last_finished is not None, timeout=BATCH_TIMEOUT_MS)
    return view.last_finished


def test_batch_from_the_form_runs_to_the_total_and_writes_rows(qtbot: Any, window: MainWindow, home: Path,
                                                               tmp_path: Path) -> None:
    view = window.batch
    loaded = window.service.loaded
    assert view.model_label.text() == f"Model: {loaded.info.name} ({loaded.sha256[:12]})"  # the job names its model
    output = tmp_path / "out.jsonl"
    fill_form(qtbot, window, "colours", ["red", "green", "blue"], output)
    # widget -> preview: the first prompts are rendered; a bad slot is reported clearly
    qtbot.waitUntil(lambda: "[3] Q: Name a colour like blue." in view.form.preview.toPlainText(), timeout=5_000)
    assert view.form.error_label.text() == ""
    view.form.template_edit.setPlainText("Q: {country}")
    qtbot.waitUntil(lambda: "{country}" in view.form.error_label.text(), timeout=5_000)
    view.form.template_edit.setPlainText("Q: {oops")
    qtbot.waitUntil(lambda: "malformed" in view.form.error_label.text(), timeout=5_000)
    view.form.template_edit.setPlainText("Q: Name a colour like {input}.\nA:")
    qtbot.waitUntil(lambda: view.form.error_label.text() == "", timeout=5_000)
    progress: list[Any] = []
    window.service.worker.progressed.connect(lambda _job, item: progress.append(item),
                                             Qt.ConnectionType.DirectConnection)
    start_outside_home(qtbot, view)
    assert view.pause_button.isEnabled() and not view.start_button.isEnabled()
    finished = wait_finished(qtbot, view)
    assert finished.status == "done" and finished.done == 3
    # model -> widgets: progress bar, done/total, tok/s, the output rows table
    assert [p.done for p in progress] == [1, 2, 3] and progress[-1].total == 3
    assert view.progress.value() == 3 and view.progress.maximum() == 3
    assert view.rate_label.text().startswith("Done: 3/3")
    assert view.output_table.rowCount() == 3
    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [line["inputs"]["input"] for line in lines] == ["red", "green", "blue"]
    rows = ledger_rows(home, "SELECT * FROM generations WHERE source = 'batch' ORDER BY id")
    assert [row["id"] for row in rows] == [line["ledger_id"] for line in lines]
    assert {row["workflow"] for row in rows} == {"colours"}
    assert rows[0]["prompt"] == "Q: Name a colour like red.\nA:"
    assert view.output_table.item(0, 0).text() == str(rows[-1]["id"])  # newest first
    qtbot.waitUntil(lambda: view.jobs_table.rowCount() == 1 and view.jobs_table.item(0, 3).text() == "done",
                    timeout=5_000)
    assert view.jobs_table.item(0, 4).text() == "3/3"


def test_pause_then_resume_completes_without_duplicates(qtbot: Any, window: MainWindow, home: Path,
                                                        tmp_path: Path) -> None:
    view = window.batch
    output = tmp_path / "paused.jsonl"
    fill_form(qtbot, window, "paused", ["one", "two", "three"], output)
    # pause right after the first generation, on the model thread, so the test does not race it
    window.service.worker.progressed.connect(
        lambda _job, p: view.control.pause() if p.done == 1 and view.control else None,
        Qt.ConnectionType.DirectConnection)
    start_outside_home(qtbot, view)
    paused = wait_finished(qtbot, view)
    assert paused.status == "paused" and paused.done == 1
    qtbot.waitUntil(lambda: view.jobs_table.rowCount() == 1 and view.jobs_table.item(0, 3).text() == "paused",
                    timeout=5_000)
    assert view.jobs_table.item(0, 4).text() == "1/3"
    view.jobs_table.selectRow(0)
    assert view.resume_button.isEnabled()
    qtbot.mouseClick(view.resume_button, Qt.MouseButton.LeftButton)
    resumed = wait_finished(qtbot, view)
    assert resumed.status == "done" and resumed.done == 3
    assert view.progress.value() == 3
    rows = ledger_rows(home, "SELECT * FROM generations WHERE source = 'batch' AND status = 'ok' ORDER BY id")
    keys = [(json.loads(r["meta"])["batch"]["item"], json.loads(r["meta"])["batch"]["sample"]) for r in rows]
    assert sorted(keys) == [(0, 0), (1, 0), (2, 0)]  # each generation once
    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [line["item"] for line in lines] == [0, 1, 2]
    assert sorted(line["ledger_id"] for line in lines) == [r["id"] for r in rows]
