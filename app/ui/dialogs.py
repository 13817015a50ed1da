"""Message boxes that do not block the event loop (opened window-modal with open(), not exec())."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

ERROR_DIALOG = "StillroomErrorDialog"
INFO_DIALOG = "StillroomInfoDialog"
CONFIRM_DIALOG = "StillroomConfirmDialog"


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


def ask_confirmation(parent: QWidget, title: str, message: str, action: str,
                     on_yes: Callable[[], None]) -> QMessageBox:
    """Ask before doing something that cannot be undone: `action` names the confirming button;
    `on_yes` runs (on the UI thread) only when it is clicked. Cancel is the default."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Stillroom", f"<b>{_escape(title)}</b>",
                      QMessageBox.StandardButton.Cancel, parent)
    box.setObjectName(CONFIRM_DIALOG)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.setInformativeText(message)
    yes = box.addButton(action, QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.buttonClicked.connect(lambda button: on_yes() if button is yes else None)
    box.open()
    return box


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
