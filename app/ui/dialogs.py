"""Message boxes that do not block the event loop (opened window-modal with open(), not exec())."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

ERROR_DIALOG = "StillroomErrorDialog"
INFO_DIALOG = "StillroomInfoDialog"


def _box(parent: QWidget, icon: QMessageBox.Icon, name: str, title: str, message: str) -> QMessageBox:
    box = QMessageBox(icon, "Stillroom", f"<b>{_escape(title)}</b>", QMessageBox.StandardButton.Ok, parent)
    box.setObjectName(name)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.setInformativeText(message)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.open()
    return box


def show_error(parent: QWidget, title: str, message: str) -> QMessageBox:
    """Show an error: `title` as the headline, `message` naming the thing and the problem."""
    return _box(parent, QMessageBox.Icon.Critical, ERROR_DIALOG, title, message)


def show_info(parent: QWidget, title: str, message: str, warning: bool = False) -> QMessageBox:
    """Show a result the user asked for (e.g. the outcome of verifying the ledger)."""
    icon = QMessageBox.Icon.Warning if warning else QMessageBox.Icon.Information
    return _box(parent, icon, INFO_DIALOG, title, message)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
