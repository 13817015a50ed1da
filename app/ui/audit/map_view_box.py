"""The audit map's view box (box and lasso selection drags) and its points' hover text (UI thread)."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal


class PointTip:
    """The hover text of a generation point. Holds the panel weakly: a bound method would make a
    reference cycle, and Python's collector could then destroy Qt objects on a worker thread."""

    def __init__(self, panel: Any) -> None:
        self._panel = weakref.ref(panel)

    def __call__(self, x: float, y: float, data: int) -> str:
        panel = self._panel()
        return panel.tip_text(data) if panel is not None else ""


class MapViewBox(pg.ViewBox):
    """A ViewBox whose left drag draws a selection box or lasso in the select modes.
    Emits polygon_drawn(ndarray m x 2, view coordinates) when the drag ends."""

    polygon_drawn = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.select_mode = "pan"
        self._path: list[tuple[float, float]] = []
        self.outline = pg.PlotCurveItem(pen=pg.mkPen("#111111", width=1, style=Qt.PenStyle.DashLine))
        self.addItem(self.outline, ignoreBounds=True)

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: ANN001,N802 - pyqtgraph override
        if self.select_mode == "pan" or ev.button() != Qt.MouseButton.LeftButton:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        here = self.mapSceneToView(ev.scenePos())
        if ev.isStart():
            start = self.mapSceneToView(ev.buttonDownScenePos())
            self._path = [(start.x(), start.y())]
        if self.select_mode == "box":
            (x0, y0), (x1, y1) = self._path[0], (here.x(), here.y())
            polygon = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        else:
            self._path.append((here.x(), here.y()))
            polygon = self._path
        closed = np.array([*polygon, polygon[0]])
        self.outline.setData(closed[:, 0], closed[:, 1])
        if ev.isFinish():
            self.outline.setData([], [])
            self.polygon_drawn.emit(np.array(polygon))
