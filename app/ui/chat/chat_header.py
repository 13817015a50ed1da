"""The Chat view's header: the conversation's title, the model it runs on, the settings toggle.

The title is elided to the width it is given (the whole title is its tooltip), so a long title
never widens the middle column at the expense of the conversation list or the sampling panel.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from app.core.models.bundled import bundled_for_file
from app.ui.formatting import human_size

SHA_ROLE = Qt.ItemDataRole.UserRole
MIN_TITLE_WIDTH = 60
MODEL_BOX_CHARS = 22


class ElidedLabel(QLabel):
    """A one-line label that shows as much of its text as fits, ending in '…'; text() is the whole."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt naming
        self._full = text
        self.setToolTip(text if self._elide() != text else "")
        super().setText(self._elide())

    def text(self) -> str:
        """The whole text, not the elided one on screen."""
        return self._full

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(MIN_TITLE_WIDTH, super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        shown = self._elide()
        self.setToolTip(self._full if shown != self._full else "")
        super().setText(shown)

    def _elide(self) -> str:
        return self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, max(self.width(), 1))


class ChatHeader(QWidget):
    """Title, model picker and settings toggle (UI thread).

    Emits model_chosen(sha256) when the user picks another model in the picker.
    """

    model_chosen = Signal(str)

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = ElidedLabel(title)
        self.title.setObjectName("ViewTitle")
        self.model_box = QComboBox()
        self.model_box.setToolTip("The model this conversation runs on; pick another to switch "
                                  "(each turn records its model's sha256 in the ledger)")
        self.model_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_box.setMinimumContentsLength(MODEL_BOX_CHARS)
        self.model_box.activated.connect(self._on_activated)
        self.settings_button = QPushButton("Settings")
        self.settings_button.setCheckable(True)
        self.settings_button.setChecked(True)
        self.settings_button.setToolTip("Show or hide the system prompt and sampling settings")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title, 1)
        layout.addWidget(self.model_box)
        layout.addWidget(self.settings_button)

    def set_models(self, models: list[dict[str, Any]], current: str | None) -> None:
        """List the registered models that are present (rows of registry.list_models) and select `current`."""
        self.model_box.blockSignals(True)
        self.model_box.clear()
        for model in models:
            if not model.get("present", True):
                continue
            bundled = bundled_for_file(model["file_name"])
            label = bundled.title if bundled is not None else model["name"] or model["file_name"]
            self.model_box.addItem(label, model["sha256"])
            index = self.model_box.count() - 1
            details = [model["file_name"], model.get("quantization") or "", human_size(model["size_bytes"] or 0),
                       f"license: {model.get('license') or 'not stated'}", f"sha256 {model['sha256'][:12]}"]
            self.model_box.setItemData(index, "\n".join(d for d in details if d), Qt.ItemDataRole.ToolTipRole)
        self.model_box.blockSignals(False)
        self.set_current(current)

    def set_current(self, sha256: str | None) -> None:
        """Select the model with this sha256 (nothing selected when it is not listed)."""
        self.model_box.blockSignals(True)
        self.model_box.setCurrentIndex(self.model_box.findData(sha256) if sha256 else -1)
        self.model_box.blockSignals(False)

    def current_sha(self) -> str | None:
        """The sha256 of the model selected in the picker."""
        value = self.model_box.currentData()
        return str(value) if value else None

    def _on_activated(self, index: int) -> None:
        sha = self.model_box.itemData(index)
        if sha:
            self.model_chosen.emit(str(sha))
