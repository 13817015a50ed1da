"""The Ledger view's detail pane: one generation's full request (JSON), its response and its record."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.ui.formatting import local_timestamp

REQUEST_FIELDS = ("mode", "chat_format", "system_prompt", "messages", "prompt", "params", "seed",
                  "logprobs_requested")
NOTHING = "Select a row to see the full request and response."


def request_json(row: dict[str, Any]) -> str:
    """The request of a generation as indented JSON: model, then every field that was sent."""
    request: dict[str, Any] = {"model": {"name": row.get("model_name"), "sha256": row.get("model_sha256")}}
    for name in REQUEST_FIELDS:
        if row.get(name) is not None:
            request[name] = row[name]
    if request.get("messages"):
        request.pop("prompt", None)
    return json.dumps(request, indent=2, ensure_ascii=False)


def record_json(row: dict[str, Any]) -> str:
    """Everything else about the row: timings, counts, status, workflow, runtime and chain hashes."""
    skip = set(REQUEST_FIELDS) | {"response", "logprobs"}
    return json.dumps({k: v for k, v in row.items() if k not in skip}, indent=2, ensure_ascii=False)


class DetailPane(QWidget):
    """Shows one generation row (UI thread). Emits open_conversation(conversation_id)."""

    open_conversation = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.row: dict[str, Any] | None = None
        self.heading = QLabel(NOTHING)
        self.heading.setObjectName("Muted")
        self.heading.setWordWrap(True)
        self.open_button = QPushButton("Open conversation")
        self.open_button.setToolTip("Show this turn's conversation in Chat")
        self.open_button.setVisible(False)
        self.open_button.clicked.connect(self._open)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the text of the tab shown")
        self.copy_button.clicked.connect(self.copy_current)
        self.copy_button.setEnabled(False)
        top = QHBoxLayout()
        top.addWidget(self.heading, 1)
        top.addWidget(self.open_button)
        top.addWidget(self.copy_button)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.response = QTextBrowser()
        self.response.setOpenLinks(False)
        self.request = QPlainTextEdit()
        self.record = QPlainTextEdit()
        for view in (self.request, self.record):
            view.setReadOnly(True)
            view.setFont(mono)
            view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.response, "Response")
        self.tabs.addTab(self.request, "Request (JSON)")
        self.tabs.addTab(self.record, "Record")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)

    def show_row(self, row: dict[str, Any] | None) -> None:
        """Show a decoded generation row, or the empty state for None."""
        self.row = row
        self.copy_button.setEnabled(row is not None)
        if row is None:
            self.heading.setText(NOTHING)
            for view in (self.response, self.request, self.record):
                view.clear()
            self.open_button.setVisible(False)
            return
        parts = [f"<b>Generation #{row['id']}</b>", row.get("status") or "", local_timestamp(row.get("started_at")),
                 row.get("source") or "", row.get("model_name") or ""]
        if row.get("workflow"):
            parts.append(f"workflow {row['workflow']}")
        if row.get("error"):
            parts.append(f"error: {row['error']}")
        self.heading.setText(" · ".join(p for p in parts if p))
        text = row.get("response") or ""
        if row.get("mode") == "chat":
            self.response.setMarkdown(text)
        else:
            self.response.setPlainText(text)
        self.request.setPlainText(request_json(row))
        self.record.setPlainText(record_json(row))
        self.open_button.setVisible(bool(row.get("conversation_id")) and row.get("source") == "chat")

    def copy_current(self) -> None:
        """Copy the visible tab's text (the raw response, not its rendering)."""
        if self.row is None:
            return
        index = self.tabs.currentIndex()
        text = (self.row.get("response") or "") if index == 0 else \
            (self.request.toPlainText() if index == 1 else self.record.toPlainText())
        QGuiApplication.clipboard().setText(text)

    def _open(self) -> None:
        if self.row and self.row.get("conversation_id"):
            self.open_conversation.emit(self.row["conversation_id"])
