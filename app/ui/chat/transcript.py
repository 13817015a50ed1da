"""The scrolling list of message bubbles of one conversation; follows the bottom while streaming."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

from app.core.store.conversations import Turn
from app.ui.chat.message_bubble import MessageBubble

STICK_SLACK_PX = 24
EMPTY_HINT = ("Ask something to start a conversation.\n"
              "Ctrl+Enter sends, Esc stops. Every turn is kept in the ledger.")


class Transcript(QScrollArea):
    """Bubbles for the turns of a conversation (UI thread)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Transcript")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        body.setObjectName("TranscriptBody")
        self._layout = QVBoxLayout(body)
        self._layout.setContentsMargins(16, 16, 16, 16)
        self._layout.setSpacing(10)
        self.empty_hint = QLabel(EMPTY_HINT)
        self.empty_hint.setObjectName("EmptyHint")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._layout.addWidget(self.empty_hint, 1)
        self._layout.addStretch(1)
        self.setWidget(body)
        self._bubbles: list[MessageBubble] = []
        self._stick = True
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._on_scrolled)
        bar.rangeChanged.connect(self._on_range_changed)

    @property
    def bubbles(self) -> list[MessageBubble]:
        """The bubbles shown, oldest first."""
        return list(self._bubbles)

    def clear(self) -> None:
        """Remove every bubble and show the empty-state hint."""
        for bubble in self._bubbles:
            self._layout.removeWidget(bubble)
            bubble.hide()  # not drawn at its old place until the event loop deletes it
            bubble.deleteLater()
        self._bubbles.clear()
        self.empty_hint.setVisible(True)
        self._stick = True

    def show_turns(self, turns: list[Turn]) -> None:
        """Replace the transcript with these turns (user message, then the finished answer)."""
        self.clear()
        for turn in turns:
            self.add_message("user", turn.prompt)
            self.add_message("assistant").finish(turn)

    def add_message(self, role: str, text: str = "") -> MessageBubble:
        """Append a bubble (an empty assistant bubble receives streamed text) and follow it."""
        bubble = MessageBubble(role, text)
        self._layout.insertWidget(self._layout.count() - 1, bubble)
        self._bubbles.append(bubble)
        self.empty_hint.setVisible(False)
        self._stick = True
        return bubble

    def remove_last(self, count: int = 1) -> None:
        """Drop the last `count` bubbles (e.g. the answer being regenerated)."""
        for _ in range(min(count, len(self._bubbles))):
            bubble = self._bubbles.pop()
            self._layout.removeWidget(bubble)
            bubble.hide()
            bubble.deleteLater()
        self.empty_hint.setVisible(not self._bubbles)

    def _on_scrolled(self, value: int) -> None:
        self._stick = value >= self.verticalScrollBar().maximum() - STICK_SLACK_PX

    def _on_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._stick:
            self.verticalScrollBar().setValue(maximum)
