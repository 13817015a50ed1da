"""Dialogs of the API keys table: ask a new key's name and workflow; show its secret once (UI thread)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class NewKeyDialog(QDialog):
    """Asks for a key's name and workflow; OK is enabled once the workflow is not empty."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("NewKeyDialog")
        self.setWindowTitle("Create API key")
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. notebook (default: the workflow)")
        self.workflow_edit = QLineEdit()
        self.workflow_edit.setPlaceholderText("e.g. eval-run-3")
        form = QFormLayout()
        form.addRow("Name", self.name_edit)
        form.addRow("Workflow", self.workflow_edit)
        note = QLabel("Requests made with this key are logged under its workflow.")
        note.setObjectName("Muted")
        note.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.buttons)
        self.workflow_edit.textChanged.connect(self._update)
        self._update()

    def values(self) -> tuple[str, str]:
        """(name, workflow), stripped."""
        return self.name_edit.text().strip(), self.workflow_edit.text().strip()

    def _update(self) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(bool(self.workflow_edit.text().strip()))


class SecretDialog(QDialog):
    """Shows a new key's secret once, selectable, with a Copy button."""

    def __init__(self, name: str, workflow: str, secret: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SecretDialog")
        self.setWindowTitle("API key created")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        headline = QLabel(f"<b>Key “{name}” for workflow “{workflow}”</b>")
        note = QLabel("Copy it now: only its hash is stored, so it cannot be shown again.")
        note.setWordWrap(True)
        self.secret_edit = QLineEdit(secret)
        self.secret_edit.setReadOnly(True)
        self.secret_edit.setMinimumWidth(420)
        self.copy_button = QPushButton("Copy")
        self.copy_button.clicked.connect(self.copy)
        row = QHBoxLayout()
        row.addWidget(self.secret_edit, 1)
        row.addWidget(self.copy_button)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(headline)
        layout.addWidget(note)
        layout.addLayout(row)
        layout.addWidget(buttons)

    def copy(self) -> None:
        """Put the secret on the clipboard."""
        QApplication.clipboard().setText(self.secret_edit.text())
        self.copy_button.setText("Copied")
