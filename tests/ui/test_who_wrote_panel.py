"""The Lab's "Who wrote this?" tab: two workflows in the boxes, the button runs the step on a
worker, and the curve and guesses appear."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.core.store import Ledger
from app.ui.lab.who_wrote_panel import WhoWrotePanel
from tests.core.records import record
from tests.core.test_screen import _styled


def test_the_panel_guesses_who_wrote_held_out_answers(qtbot: Any, tmp_path: Path) -> None:
    texts, labels = _styled(50, 11)
    ledger = Ledger.open(tmp_path / "ledger.db")
    ledger.append_many([record(i, response=text, workflow=f"teacher-{label}") for i, (text, label) in
                        enumerate(zip(texts, labels))])
    ledger.close()
    panel = WhoWrotePanel(tmp_path / "ledger.db")
    qtbot.addWidget(panel)
    panel.first.setText("teacher-markdowny")  # widget -> model
    panel.second.setText("teacher-plain")
    with qtbot.waitSignal(panel.finished, timeout=120_000) as signal:
        panel.run_button.click()
    result = signal.args[0]
    assert result.teachers == ["teacher-markdowny", "teacher-plain"] and result.curve[-1].accuracy >= 0.9
    text = panel.result_label.text()  # model -> widget
    assert "held-out accuracy" in text and f"{result.curve[-1].per_teacher}</td>" in text
    panel.shutdown()
