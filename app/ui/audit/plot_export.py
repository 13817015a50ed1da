"""Export a plot widget as PNG or SVG, and ask where to save (UI thread).

SVG goes through QSvgGenerator painting the widget: lines, regions and text stay vectors, point
markers come out as small images. (pyqtgraph's own SVGExporter cannot parse the paths Qt 6 writes.)
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRect, QSize
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QFileDialog, QWidget


def save_png(widget: QWidget, path: Path) -> bool:
    """Write the widget as shown to a PNG file; False if it could not be written."""
    return widget.grab().save(str(path), "PNG")


def save_svg(widget: QWidget, path: Path, title: str) -> None:
    """Write the widget as shown to an SVG file; OSError if it could not be written."""
    size = widget.size()
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(QSize(size.width(), size.height()))
    generator.setViewBox(QRect(0, 0, size.width(), size.height()))
    generator.setTitle(title)
    generator.setDescription("Exported from Stillroom")
    painter = QPainter()
    if not painter.begin(generator):
        raise OSError(f"could not write {path}")
    try:
        widget.render(painter)
    finally:
        painter.end()
    if not path.exists() or path.stat().st_size == 0:
        raise OSError(f"could not write {path}")


def ask_save_path(parent: QWidget, title: str, default_name: str, filters: dict[str, str],
                  accepted: tuple[str, ...]) -> Path | None:
    """A save dialog; the chosen filter's suffix is added when the name has none of `accepted`."""
    path, chosen = QFileDialog.getSaveFileName(parent, title, str(Path.home() / default_name), ";;".join(filters))
    if not path:
        return None
    target = Path(path)
    if target.suffix.lower() not in accepted:
        target = target.with_suffix(filters.get(chosen, next(iter(filters.values()))))
    return target
