"""The list of conversations beside the transcript: pick one to reopen it, F2 to rename (UI thread)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from app.core.store.conversations import Conversation
from app.ui.formatting import local_time

ID_ROLE = Qt.ItemDataRole.UserRole


class ConversationList(QWidget):
    """Conversations, most recent first.

    Emits (UI thread) opened(conversation_id) when the user picks one, new_requested() for the
    New button, and renamed(conversation_id, title) after an in-place edit.
    """

    opened = Signal(str)
    new_requested = Signal()
    renamed = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.new_button = QPushButton("New conversation")
        self.new_button.setProperty("primary", True)
        self.new_button.setToolTip("Start a new conversation (Ctrl+N)")
        self.new_button.clicked.connect(self.new_requested)
        layout.addWidget(self.new_button)
        self.list = QListWidget()
        self.list.setObjectName("Conversations")
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed
                                  | QAbstractItemView.EditTrigger.DoubleClicked)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setUniformItemSizes(True)
        self.list.itemClicked.connect(self._on_clicked)
        self.list.itemActivated.connect(self._on_clicked)
        self.list.itemChanged.connect(self._on_changed)
        layout.addWidget(self.list, 1)
        self._updating = False

    def set_conversations(self, conversations: list[Conversation], current: str | None) -> None:
        """Show these conversations, keeping `current` selected (no signals). Items are updated in
        place when the list is unchanged, and left alone while one is being renamed."""
        if self.list.state() == QAbstractItemView.State.EditingState:
            return
        self._updating = True
        if [c.id for c in conversations] != self.ids():
            self.list.clear()
            for conversation in conversations:
                item = QListWidgetItem()
                item.setData(ID_ROLE, conversation.id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                self.list.addItem(item)
        for row, conversation in enumerate(conversations):
            item = self.list.item(row)
            item.setText(conversation.title)
            item.setToolTip(f"{conversation.title}\nLast turn {local_time(conversation.updated_at)}"
                            "\nDouble-click or F2 to rename")
        self._updating = False
        self.select(current)

    def select(self, conversation_id: str | None) -> None:
        """Mark a conversation as the one shown (no signals)."""
        self._updating = True
        self.list.clearSelection()
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(ID_ROLE) == conversation_id:
                self.list.setCurrentItem(item)
                item.setSelected(True)
        self._updating = False

    def ids(self) -> list[str]:
        """The conversation ids in display order."""
        return [self.list.item(row).data(ID_ROLE) for row in range(self.list.count())]

    def _on_clicked(self, item: QListWidgetItem) -> None:
        if not self._updating:
            self.opened.emit(item.data(ID_ROLE))

    def _on_changed(self, item: QListWidgetItem) -> None:
        if not self._updating:
            self.renamed.emit(item.data(ID_ROLE), item.text())
