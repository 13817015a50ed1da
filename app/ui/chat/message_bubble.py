"""One message in the transcript: who, the text (Markdown for answers), details and a copy button."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from app.core.store.conversations import Turn
from app.ui.formatting import local_time

RENDER_INTERVAL_MS = 40  # while streaming, re-render the Markdown at most this often
STATUS_NOTES = {"cancelled": "stopped", "error": "failed"}


class MessageBubble(QFrame):
    """A user or assistant message. Assistant text is rendered as Markdown and may stream in.

    Lives on the UI thread; append() is called per streamed token and coalesces re-rendering.
    """

    def __init__(self, role: str, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role = role
        self._text = text
        self.setObjectName("Bubble")
        self.setProperty("role", role)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(4)
        header = QHBoxLayout()
        self.role_label = QLabel("You" if role == "user" else "Assistant")
        self.role_label.setObjectName("BubbleRole")
        header.addWidget(self.role_label)
        header.addStretch(1)
        self.copy_button = QToolButton()
        self.copy_button.setObjectName("BubbleCopy")
        self.copy_button.setText("Copy")
        self.copy_button.setToolTip("Copy this message as Markdown")
        self.copy_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.copy_button.clicked.connect(self.copy)
        header.addWidget(self.copy_button)
        layout.addLayout(header)
        self.body = QLabel()
        self.body.setObjectName("BubbleBody")
        self.body.setWordWrap(True)
        self.body.setTextFormat(Qt.TextFormat.MarkdownText if role == "assistant" else Qt.TextFormat.PlainText)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                          | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.body.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.body)
        self.details = QLabel()
        self.details.setObjectName("BubbleDetails")
        self.details.setVisible(False)
        layout.addWidget(self.details)
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self._render)
        self._render()

    @property
    def text(self) -> str:
        """The raw text of the message (Markdown source for answers)."""
        return self._text

    def append(self, piece: str) -> None:
        """Add streamed text; the label is re-rendered at most every RENDER_INTERVAL_MS."""
        self._text += piece
        if not self._render_timer.isActive():
            self._render_timer.start()

    def set_text(self, text: str) -> None:
        """Replace the text and render it now."""
        self._text = text
        self._render()

    def show_waiting(self) -> None:
        """Mark an answer that has not produced its first token yet."""
        self.body.setText("*…*")

    def finish(self, turn: Turn) -> None:
        """Show the logged outcome of an answer: final text, status and its details line."""
        self._render_timer.stop()
        self._text = turn.response
        self.setProperty("status", turn.status)
        self.style().unpolish(self)
        self.style().polish(self)
        if turn.status == "error" and not turn.response:
            self.body.setTextFormat(Qt.TextFormat.PlainText)
            self.body.setText(f"The generation failed: {turn.error or 'unknown error'}")
        else:
            self._render()
        self.details.setText(details_line(turn))
        self.details.setToolTip(f"Ledger row #{turn.generation_id}, seed {turn.seed}")
        self.details.setVisible(True)

    def copy(self) -> None:
        """Put the message's raw text on the clipboard."""
        QGuiApplication.clipboard().setText(self._text)

    def _render(self) -> None:
        self.body.setText(keep_line_breaks(self._text) if self.role == "assistant" else self._text)


def keep_line_breaks(markdown: str) -> str:
    """Markdown in which a single newline stays a line break (models write poems and lists that
    way), except inside code fences, where text is shown as it is anyway."""
    lines, fenced = [], False
    for line in markdown.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        lines.append(line if fenced or not line.strip() else line + "  ")
    return "\n".join(lines)


def details_line(turn: Turn) -> str:
    """'42 tokens · 21.3 tok/s · Gemma 3 270M · 14:03 · #17' (plus 'stopped' / 'failed')."""
    parts = []
    if turn.completion_tokens is not None:
        parts.append(f"{turn.completion_tokens} tokens")
    if turn.tokens_per_s:
        parts.append(f"{turn.tokens_per_s:.1f} tok/s")
    if turn.duration_ms:
        parts.append(f"{turn.duration_ms / 1000:.1f} s")
    if turn.model_name:
        parts.append(turn.model_name)
    if turn.started_at:
        parts.append(local_time(turn.started_at))
    parts.append(f"#{turn.generation_id}")
    note = STATUS_NOTES.get(turn.status)
    if note:
        parts.append(note)
    return " · ".join(parts)

