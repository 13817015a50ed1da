"""Help > Environment check: the checks of `stillroom doctor` in a window, run on a worker thread.

UI thread only. The checks run on the dialog's JobRunner, a stream of checks (hashing models and verifying a large ledger
take seconds); each appears in the table as soon as it is done. Closing the dialog cancels the
run between checks and waits for the thread.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox, QDialog, QDialogButtonBox, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget,
    QTableWidgetItem, QVBoxLayout, QWidget,
)

from app.core.doctor import FAIL, INFO, OK, WARN, Check, DoctorReport, format_check, iter_checks, summary_line
from app.workers.job_runner import JobRunner

DIALOG_NAME = "StillroomEnvironmentDialog"
COLUMNS = ("Status", "Check", "Found", "Fix")
STATUS_TEXT = {OK: "ok", INFO: "info", WARN: "warning", FAIL: "problem"}
STATUS_COLOR = {OK: "#2e7d32", INFO: "#607d8b", WARN: "#b26a00", FAIL: "#c62828"}


class EnvironmentDialog(QDialog):
    """A table of checks, a summary line, Quick (no hashing), Run again and Copy report.

    Signals (UI thread): checks_done(DoctorReport) when a run ends (also a cancelled one)."""

    checks_done = Signal(object)

    def __init__(self, parent: QWidget | None = None, home: Path | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(DIALOG_NAME)
        self.setWindowTitle("Environment check")
        self.resize(980, 520)
        self._home = home
        self._checks: list[Check] = []
        self.jobs = JobRunner("doctor", self)

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.summary = QLabel("", self)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.quick = QCheckBox("Quick (compare model sizes, do not hash)", self)
        self.run_button = QPushButton("Run again", self)
        self.run_button.clicked.connect(self.run_checks)
        self.copy_button = QPushButton("Copy report", self)
        self.copy_button.clicked.connect(self.copy_report)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)

        row = QHBoxLayout()
        row.addWidget(self.quick)
        row.addStretch(1)
        row.addWidget(self.copy_button)
        row.addWidget(self.run_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary)
        layout.addLayout(row)
        layout.addWidget(buttons)

    def run_checks(self) -> None:
        """Start a run (ignored while one is running)."""
        if self.jobs.busy:
            return
        self._checks = []
        self.table.setRowCount(0)
        self.summary.setText("Checking…")
        self.run_button.setEnabled(False)
        home, quick = self._home, self.quick.isChecked()
        (self.jobs.run(lambda cancel: iter_checks(home, quick=quick, cancel=cancel))
         .progress(self._add_check)
         .failure(lambda exc: self.summary.setText(f"The check stopped: {exc}"))
         .finally_(self._finished))

    def report(self) -> DoctorReport:
        """The checks shown so far."""
        return DoctorReport(list(self._checks))

    def report_text(self) -> str:
        """The report as plain text, as `stillroom doctor` prints it."""
        return "\n".join([format_check(check) for check in self._checks] + [summary_line(self.report())])

    def copy_report(self) -> None:
        QGuiApplication.clipboard().setText(self.report_text())

    def _add_check(self, check: Check) -> None:
        self._checks.append(check)
        row = self.table.rowCount()
        self.table.insertRow(row)
        values = (STATUS_TEXT[check.status], check.name, check.detail,
                  check.fix if check.status in (WARN, FAIL) and check.fix else "")
        for column, value in enumerate(values):
            item = QTableWidgetItem(value)
            item.setToolTip(value)
            if column == 0:
                item.setForeground(QBrush(QColor(STATUS_COLOR[check.status])))
            self.table.setItem(row, column, item)
        self.table.resizeRowToContents(row)

    def _finished(self) -> None:
        self.run_button.setEnabled(True)
        report = self.report()
        if report.ok and not report.warnings:
            self.summary.setText("All checks passed.")
        else:
            problems, warnings = len(report.failures), len(report.warnings)
            self.summary.setText(f"{problems} problem(s), {warnings} warning(s): the Fix column says what to do.")
        self.checks_done.emit(report)

    def done(self, result: int) -> None:  # noqa: D102 - stop the worker before closing
        self.jobs.shutdown()
        super().done(result)


def open_environment_check(parent: QWidget) -> EnvironmentDialog:
    """Open the dialog (non-blocking) and start the checks."""
    dialog = EnvironmentDialog(parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    dialog.run_checks()
    return dialog
