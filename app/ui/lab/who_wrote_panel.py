"""The Lab's "Who wrote this?" tab: two teachers' answers (two ledger workflows; by default the ones
`stillroom lab who-wrote` fills from the two bundled models), the screener's guess of the author of
held-out answers, and its accuracy against the number of examples. The work runs on the panel's
own JobRunner (a worker thread with its own read connection)."""

from __future__ import annotations

import html
from collections.abc import Generator
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from app.core.cancel import CancelToken
from app.core.lab.who_wrote import WORKFLOW_PREFIX, WhoWroteResult, teacher_texts, who_wrote
from app.core.progress import Progress
from app.core.store import open_db
from app.ui.dialogs import show_error
from app.ui.progress_strip import ProgressStrip
from app.workers.job_runner import JobRunner

INTRO = ("Two teachers answer the same inputs. The screener learns each one's style from some of their "
         "answers and guesses who wrote the answers it has not seen. With more examples, does it get better? "
         "Fill the two workflows with `stillroom lab who-wrote` (the two bundled models), or name any two "
         "workflows of the ledger, such as two batch runs of the same inputs on two models.")


def who_wrote_job(ledger_path: Path, workflows: tuple[str, str], seed: int):
    """A generator factory: read both workflows' answers and run the step; returns WhoWroteResult."""

    def run(cancel: CancelToken) -> Generator[Progress, None, WhoWroteResult | None]:
        db = open_db(ledger_path)
        try:
            texts = {name: teacher_texts(db, name) for name in workflows}
        finally:
            db.close()
        return (yield from who_wrote(texts, seed, cancel=cancel))

    return run


class WhoWrotePanel(QWidget):
    """Workflows in, the accuracy curve and a few guesses out. Emits finished(WhoWroteResult)."""

    finished = Signal(object)

    def __init__(self, ledger_path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ledger_path = ledger_path
        self.jobs = JobRunner("who-wrote", self)
        self.first = QLineEdit(WORKFLOW_PREFIX + "gemma")
        self.second = QLineEdit(WORKFLOW_PREFIX + "smollm2")
        self.run_button = QPushButton("Who wrote this?")
        self.run_button.clicked.connect(self.run)
        self.result_label = QLabel("")
        self.result_label.setTextFormat(Qt.TextFormat.RichText)
        self.result_label.setWordWrap(True)
        intro = QLabel(html.escape(INTRO))
        intro.setWordWrap(True)
        row = QHBoxLayout()
        for widget in (QLabel("Teacher A"), self.first, QLabel("Teacher B"), self.second, self.run_button):
            row.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(row)
        layout.addWidget(ProgressStrip(self.jobs))
        layout.addWidget(self.result_label, 1)

    def run(self, seed: int = 7) -> None:
        """Run the step on the two workflows in the boxes (worker thread)."""
        if self.jobs.busy:
            return
        workflows = (self.first.text().strip(), self.second.text().strip())
        self.jobs.run(who_wrote_job(self._ledger_path, workflows, seed), "who-wrote").success(self._show).failure(
            lambda exc: show_error(self, "Who wrote this?", str(exc)))

    def _show(self, result: WhoWroteResult | None) -> None:
        if result is None:
            return
        esc = html.escape
        rows = "".join(f"<tr><td align='right'>{p.per_teacher}</td><td align='right'>{p.accuracy * 100:.0f}%</td></tr>"
                       for p in result.curve)
        guesses = "".join(f"<li>{'✔' if g['author'] == g['guess'] else '✘'} <i>{esc(g['answer'][:120])}</i> "
                          f"— written by {esc(g['author'])}, guessed {esc(g['guess'])}</li>" for g in result.guesses)
        self.result_label.setText(
            f"<p>{esc(' vs '.join(result.teachers))}: {result.heldout} held-out answers.</p>"
            f"<table><tr><th>answers per teacher</th><th>held-out accuracy</th></tr>{rows}</table><ul>{guesses}</ul>")
        self.finished.emit(result)

    def shutdown(self) -> None:
        """Cancel a running step and wait for its thread."""
        self.jobs.shutdown()
