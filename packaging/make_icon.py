"""Render assets/icons/stillroom.svg to the 256 px PNG app icon (assets/stillroom-256.png).

Run: `QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/make_icon.py`
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "assets" / "icons" / "stillroom.svg"
TARGET = ROOT / "assets" / "stillroom-256.png"
SIZE_PX = 256


def render(source: Path = SOURCE, target: Path = TARGET, size: int = SIZE_PX) -> Path:
    """Draw the SVG at `size` x `size` pixels on a transparent background and save it as PNG."""
    renderer = QSvgRenderer(str(source))
    if not renderer.isValid():
        raise ValueError(f"{source}: not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    if not image.save(str(target), "PNG"):
        raise OSError(f"{target}: could not write the icon")
    return target


if __name__ == "__main__":
    app = QGuiApplication(sys.argv)
    print(render())
