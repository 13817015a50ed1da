"""A progress bar, a line of text and Cancel, bound to a JobRunner: the one progress display of the
views' background jobs (UI thread).

While a job runs the bar shows its Progress (busy when the total is not known) and Cancel asks the
runner to stop; the bar hides when the job ends. The label is the view's status line: the strip
writes `describe(item)` there for each Progress item (when a describe function is given) and
"Cancelling…" on Cancel; the view writes what came of the job.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from app.core.progress import Progress
from app.workers.job_runner import JobRunner

BAR_WIDTH = 260
CANCELLING = "Cancelling…"


class ProgressStrip(QWidget):
    """[progress bar] [Cancel] [status line]. `steps`: the bar's maximum when it shows a share of
    the stage (None: the job's own done/total)."""

    def __init__(self, runner: JobRunner, describe: Callable[[Progress], str] | None = None,
                 steps: int | None = None, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self._describe, self._steps = runner, describe, steps
        self.bar = QProgressBar()
        self.bar.setVisible(False)
        self.bar.setMaximumWidth(BAR_WIDTH)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(runner.cancel)
        self.label = QLabel(text)
        self.label.setObjectName("Muted")
        self.label.setTextFormat(Qt.TextFormat.PlainText)  # file names and errors are never rich text
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        layout.addWidget(self.label, 1)
        runner.started.connect(self._on_started)
        runner.progressed.connect(self._on_progress)
        runner.cancelling.connect(self._on_cancelling)
        runner.ended.connect(self._on_ended)

    def _on_started(self) -> None:
        self.bar.setRange(0, 0)
        self.bar.setVisible(True)
        self.cancel_button.setEnabled(True)

    def _on_progress(self, item: object) -> None:
        if not isinstance(item, Progress):
            return
        if item.total:
            if self._steps is None:
                self.bar.setRange(0, item.total)
                self.bar.setValue(item.done)
            else:
                self.bar.setRange(0, self._steps)
                self.bar.setValue(int(self._steps * min(item.done, item.total) / item.total))
        else:
            self.bar.setRange(0, 0)
        if self._describe is not None:
            self.label.setText(self._describe(item))

    def _on_cancelling(self) -> None:
        self.cancel_button.setEnabled(False)
        self.label.setText(CANCELLING)

    def _on_ended(self) -> None:
        self.cancel_button.setEnabled(False)
        self.bar.setVisible(False)
