"""Light and dark themes: a Fusion palette plus the stylesheet in assets/styles, on the UI thread.

"system" follows QStyleHints.colorScheme() and re-applies itself when the system scheme changes.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

ASSETS = Path(__file__).resolve().parents[2] / "assets"
STYLESHEET = ASSETS / "styles" / "stillroom.qss"

LIGHT: dict[str, str] = {
    "window": "#f6f5f1", "base": "#ffffff", "alt_base": "#f7f6f3", "text": "#1f2328", "muted": "#6a6f76",
    "border": "#dedad2", "sidebar": "#eeece6", "hover": "#e4e1d9", "button": "#ffffff",
    "accent": "#2f6f62", "accent_soft": "#d6e7e2", "accent_text": "#1d5247", "on_accent": "#ffffff",
    "user_bubble": "#e6efec", "assistant_bubble": "#ffffff", "danger": "#b3261e", "warning": "#8a5a00",
    "ok": "#1a7f37", "link": "#1d5f8a",
}
DARK: dict[str, str] = {
    "window": "#1d1e21", "base": "#25272b", "alt_base": "#2a2c31", "text": "#e7e7e4", "muted": "#9ca1a8",
    "border": "#393c42", "sidebar": "#18191b", "hover": "#30333a", "button": "#2c2f34",
    "accent": "#5fae9b", "accent_soft": "#2c4640", "accent_text": "#9fdccb", "on_accent": "#0f1c19",
    "user_bubble": "#28403a", "assistant_bubble": "#25272b", "danger": "#f2a19b", "warning": "#e3b341",
    "ok": "#5ccf7a", "link": "#8cc8f0",
}


def system_is_dark() -> bool:
    """Whether the desktop asks for a dark scheme (Unknown counts as light)."""
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def effective_scheme(choice: str) -> str:
    """'light' or 'dark' for a theme choice of system, light or dark."""
    if choice == "system":
        return "dark" if system_is_dark() else "light"
    return "dark" if choice == "dark" else "light"


def colors(scheme: str) -> dict[str, str]:
    """The named colours of a scheme ('light' or 'dark')."""
    return DARK if scheme == "dark" else LIGHT


@cache
def _stylesheet_template() -> str:
    return STYLESHEET.read_text(encoding="utf-8")


def stylesheet(scheme: str) -> str:
    """The stylesheet with the scheme's colours filled in (longest names first)."""
    text = _stylesheet_template()
    palette = colors(scheme)
    for name in sorted(palette, key=len, reverse=True):
        text = text.replace(f"@{name}", palette[name])
    return text


def palette(scheme: str) -> QPalette:
    """A Fusion palette for the scheme, so that widgets without a stylesheet rule match."""
    c = {name: QColor(value) for name, value in colors(scheme).items()}
    pal = QPalette()
    role = QPalette.ColorRole
    pal.setColor(role.Window, c["window"])
    pal.setColor(role.WindowText, c["text"])
    pal.setColor(role.Base, c["base"])
    pal.setColor(role.AlternateBase, c["alt_base"])
    pal.setColor(role.Text, c["text"])
    pal.setColor(role.Button, c["button"])
    pal.setColor(role.ButtonText, c["text"])
    pal.setColor(role.ToolTipBase, c["base"])
    pal.setColor(role.ToolTipText, c["text"])
    pal.setColor(role.PlaceholderText, c["muted"])
    pal.setColor(role.Highlight, c["accent"])
    pal.setColor(role.HighlightedText, c["on_accent"])
    pal.setColor(role.Link, c["link"])
    pal.setColor(role.BrightText, c["danger"])
    pal.setColor(role.Mid, c["border"])
    pal.setColor(role.Midlight, c["hover"])
    for disabled in (role.Text, role.WindowText, role.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, disabled, c["muted"])
    return pal


def apply_theme(app: QApplication, choice: str) -> str:
    """Apply a theme choice to the whole application; returns the scheme used ('light'/'dark')."""
    scheme = effective_scheme(choice)
    app.setStyle("Fusion")
    app.setPalette(palette(scheme))
    app.setStyleSheet(stylesheet(scheme))
    app.setProperty("stillroom_scheme", scheme)
    return scheme


def current_scheme() -> str:
    """The scheme applied last ('light' when none was applied)."""
    app = QApplication.instance()
    value = app.property("stillroom_scheme") if app is not None else None
    return str(value) if value else "light"
