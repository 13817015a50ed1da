"""The Lab view on the real default model: a reduced lab run step by step on worker threads (the
teacher through the model thread), a cancelled teacher step, and the lesson report export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.core.lab.styles import STYLES
from app.ui.lab.lab_view import LabView
from app.ui.main_window import MainWindow
from tests.ui.helpers import ledger_rows

STEP_TIMEOUT_MS = 420_000


def lab_view(window: MainWindow) -> LabView:
    view = window.findChild(LabView)
    assert view is not None
    window.show_view("lab")
    return view


def test_reduced_lab_runs_all_steps_and_exports(qtbot: Any, window: MainWindow, home: Path, tmp_path: Path) -> None:
    view = lab_view(window)
    # widget -> model: the form gives the lab's settings
    view.style_combo.setCurrentIndex(STYLES.index("judge"))
    view.samples_spin.setValue(4)
    view.seed_spin.setValue(3)
    assert (view.config().style, view.config().samples, view.config().seed) == ("judge", 4, 3)
    assert "grades" in view.style_note.text()
    assert not view.export_button.isEnabled() and not view.step_buttons["student"].isEnabled()
    finished: list[str] = []
    view.step_finished.connect(finished.append)
    view.all_button.click()
    assert view.running == "teacher" and view.strip.cancel_button.isEnabled() and not view.style_combo.isEnabled()
    qtbot.waitUntil(lambda: finished == ["teacher", "student", "compare"], timeout=STEP_TIMEOUT_MS)
    qtbot.waitUntil(lambda: view.running is None, timeout=10_000)
    state = view.state
    assert state is not None and state.teacher is not None and state.student is not None
    assert state.compare is not None
    # model -> widgets: answers, curve, levels
    calls = state.teacher.calls
    assert view.answers.rowCount() == calls
    rows = ledger_rows(home, "SELECT source, workflow FROM generations WHERE workflow = 'lab:judge'")
    assert len(rows) == calls and all(r["source"] == "lab" for r in rows)
    assert [p.samples for p in view.curve.points] == [2, 4]
    assert view.curve.table.rowCount() == 2
    assert view.levels.rowCount() >= 1 and view.levels.item(0, 0).text().startswith("lab:judge")
    assert "agrees with the teacher" in view.summary.text()
    assert view.export_button.isEnabled()
    path = view.export(tmp_path / "lesson.html")
    text = path.read_text(encoding="utf-8")
    assert "<svg" in text and "lab:judge" in text and "Frontier Model Forum" in text


def test_cancel_the_teacher_step(qtbot: Any, window: MainWindow, home: Path, tmp_path: Path) -> None:
    view = lab_view(window)
    view.style_combo.setCurrentIndex(STYLES.index("plain"))
    view.samples_spin.setValue(2)
    view.step_buttons["teacher"].click()
    qtbot.waitUntil(lambda: view.answers.rowCount() >= 2, timeout=STEP_TIMEOUT_MS)
    view.strip.cancel_button.click()
    qtbot.waitUntil(lambda: view.running is None, timeout=60_000)
    assert view.state is not None and view.state.teacher is None
    assert "cancelled" in view.status.text()
    assert not view.step_buttons["student"].isEnabled() and view.step_buttons["teacher"].isEnabled()
    done = view.answers.rowCount()
    rows = ledger_rows(home, "SELECT status FROM generations WHERE workflow = 'lab:plain'")
    assert done <= len(rows) < 2 * 2 + 32  # stopped well before the end; what was answered is kept
    # nothing to report but the question asked: the export still writes what there is
    text = view.export(tmp_path / "partial.html").read_text(encoding="utf-8")
    assert "has not been run yet" in text
