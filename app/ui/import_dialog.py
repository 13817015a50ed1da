"""File > Import…: read a dataset or log file into the ledger (the GUI of `stillroom import`).

The import runs on the dialog's JobRunner with a ledger connection of its own (WAL; SQLite
serializes the writers), so chat and batch runs go on meanwhile. The dialog (UI thread) shows the
job's progress in a ProgressStrip and, when it ends, the summary with the malformed records' positions, and
emits imported(rows_written) once rows were committed.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.cancel import CancelToken
from app.core.ingest import FORMAT_NAMES, FORMATS, ImportProgress, ImportSummary, import_file
from app.core.ingest.errors import ImportFileError
from app.core.ingest.summary_text import summary_lines
from app.core.store import Ledger
from app.ui.progress_strip import ProgressStrip
from app.workers.job_runner import JobRunner

PERCENT = 100
IMPORT_FILTER = "Datasets and logs (*.jsonl *.json *.csv *.tsv *.db *.sqlite);;All files (*)"


def _import(ledger_path: Path, file: Path, workflow: str, fmt: str, prompt_field: str | None,
            response_field: str | None, cancel: CancelToken) -> Generator[ImportProgress, None, ImportSummary]:
    """import_file on a ledger connection of this thread's own (runs on the import thread)."""
    ledger = Ledger.open(ledger_path)
    try:
        return (yield from import_file(ledger, file, workflow, fmt, prompt_field=prompt_field,
                               response_field=response_field, cancel=cancel))
    finally:
        ledger.close()


def describe(item: ImportProgress) -> str:
    """The status line while importing."""
    return (f"{item.records:,} records read, {item.rows_written:,} rows written, "
            f"{item.skipped:,} skipped, {item.malformed:,} malformed")


class ImportDialog(QDialog):
    """File, workflow, format, optional field names, progress and the result (UI thread)."""

    imported = Signal(int)

    def __init__(self, ledger_path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ImportDialog")
        self.setWindowTitle("Import into the ledger")
        self.setMinimumWidth(560)
        self._ledger_path = ledger_path
        self.jobs = JobRunner("import", self)
        self.summary: ImportSummary | None = None
        self.error: str | None = None
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("A JSONL / JSON / CSV dataset or an llm logs.db")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self.pick_file)
        file_row = QHBoxLayout()
        file_row.addWidget(self.file_edit, 1)
        file_row.addWidget(browse)
        self.workflow_edit = QLineEdit()
        self.workflow_edit.setPlaceholderText("the workflow the imported rows belong to")
        self.format_combo = QComboBox()
        self.format_combo.addItem("Detect automatically", "auto")
        for name in FORMATS:
            self.format_combo.addItem(FORMAT_NAMES.get(name, name), name)
        self.prompt_field = QLineEdit()
        self.prompt_field.setPlaceholderText("optional, for prompt/response files")
        self.response_field = QLineEdit()
        self.response_field.setPlaceholderText("optional")
        form = QFormLayout()
        form.addRow("File", file_row)
        form.addRow("Workflow", self.workflow_edit)
        form.addRow("Format", self.format_combo)
        form.addRow("Prompt field", self.prompt_field)
        form.addRow("Response field", self.response_field)
        self.strip = ProgressStrip(self.jobs, describe, PERCENT)
        self.status_label = self.strip.label
        self.result = QPlainTextEdit()
        self.result.setReadOnly(True)
        self.result.setPlaceholderText("The summary appears here: rows written, records skipped, malformed records.")
        self.import_button = QPushButton("Import")
        self.import_button.setObjectName("PrimaryButton")
        self.import_button.clicked.connect(self.start)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.strip)
        layout.addWidget(self.result, 1)
        layout.addLayout(buttons)
        for edit in (self.file_edit, self.workflow_edit):
            edit.textChanged.connect(self._update_buttons)
        self._update_buttons()

    def pick_file(self) -> None:
        """Choose the file to import."""
        path, _ = QFileDialog.getOpenFileName(self, "Import a file", str(Path.home()), IMPORT_FILTER)
        if path:
            self.file_edit.setText(path)

    def start(self) -> None:
        """Run the import on its own thread."""
        if self.jobs.busy:
            return
        file = Path(self.file_edit.text().strip()).expanduser()
        workflow = self.workflow_edit.text().strip()
        fmt = self.format_combo.currentData()
        prompt, response = self.prompt_field.text().strip() or None, self.response_field.text().strip() or None
        self.summary, self.error = None, None
        self.result.clear()
        (self.jobs.run(lambda cancel: _import(self._ledger_path, file, workflow, fmt, prompt, response, cancel))
         .success(self._on_summary)
         .failure(self._on_error)
         .finally_(self._update_buttons))
        self.status_label.setText(f"Reading {file.name}…")
        self._update_buttons()

    def cancel(self) -> None:
        """Stop between records; committed batches stay (running the import again continues)."""
        self.jobs.cancel()

    def closeEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        self.jobs.shutdown()
        super().closeEvent(event)  # type: ignore[arg-type]

    def _on_summary(self, summary: ImportSummary) -> None:
        self.summary = summary
        reason = summary.nothing_imported()
        self.status_label.setText("Cancelled." if summary.cancelled else
                                  f"Nothing imported: {reason}." if reason else "Done.")
        self.result.setPlainText("\n".join(summary_lines(summary)))
        if summary.rows_written:
            self.imported.emit(summary.rows_written)

    def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, (ImportFileError, ValueError)):
            self.error = str(exc)
        else:
            self.error = f"{type(exc).__name__}: {exc}"
        self.status_label.setText("Nothing was imported.")
        self.result.setPlainText(f"This file cannot be imported:\n{self.error}\n\nThe ledger was not changed.")

    def _update_buttons(self) -> None:
        running = self.jobs.busy
        ready = bool(self.file_edit.text().strip() and self.workflow_edit.text().strip())
        self.import_button.setEnabled(ready and not running)
        for widget in (self.file_edit, self.workflow_edit, self.format_combo, self.prompt_field, self.response_field):
            widget.setEnabled(not running)
