"""Icons from assets/icons, tinted for the current theme (SVGs use currentColor). UI thread only."""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from app.ui.theme import ASSETS

ICONS = ASSETS / "icons"
RENDER_PX = 48


def app_icon() -> QIcon:
    """The Stillroom application icon."""
    return QIcon(str(ICONS / "stillroom.svg"))


@cache
def tinted_icon(name: str, color: str) -> QIcon:
    """assets/icons/<name>.svg drawn in `color` (a #rrggbb string); an empty icon if there is none."""
    path = ICONS / f"{name}.svg"
    if not path.exists():
        return QIcon()
    svg = path.read_text(encoding="utf-8").replace("currentColor", color)
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    pixmap = QPixmap(RENDER_PX, RENDER_PX)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    renderer.render(painter, QRectF(0, 0, RENDER_PX, RENDER_PX))
    painter.end()
    return QIcon(pixmap)
