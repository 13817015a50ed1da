"""The map: generations' prompts and the pattern library's exemplars in one 2-D projection (UI thread).

pyqtgraph items are created once and updated with setData. Pattern regions are the convex hulls of
their exemplars, labelled with the pattern's name. Points are coloured by workflow or by top pattern;
the legend says which colour is which. Hover shows a prompt excerpt; a click emits
generation_clicked(generation_id); highlight_workflow() enlarges one workflow's points.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.ui.audit.audit_tasks import MapData

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")
COLOUR_MODES = {"workflow": "Colour by workflow", "pattern": "Colour by top pattern"}
POINT_SIZE, HIGHLIGHT_SIZE, DIMMED_ALPHA = 7, 12, 60
EXEMPLAR_SIZE = 6


REGION_CORE_SHARE = 0.6


def colour(index: int) -> QColor:
    """The index-th category colour."""
    return QColor(PALETTE[index % len(PALETTE)])


def core_points(points: np.ndarray, share: float = REGION_CORE_SHARE) -> np.ndarray:
    """The `share` of points closest to their median: a pattern's region without its outliers, so
    that nine regions in one projection stay readable."""
    if len(points) < 4:
        return points
    distance = np.linalg.norm(points - np.median(points, axis=0), axis=1)
    keep = max(3, int(round(len(points) * share)))
    return points[np.argsort(distance)[:keep]]


def convex_hull(points: np.ndarray) -> np.ndarray:
    """The convex hull of 2-D points (Andrew's monotone chain), closed (first point repeated)."""
    pts = sorted(set(map(tuple, np.round(points, 9))))
    if len(pts) < 3:
        return np.array(pts + pts[:1]) if pts else np.zeros((0, 2))

    def half(seq: list) -> list:
        out: list = []
        for p in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (p[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    hull = lower[:-1] + upper[:-1]
    return np.array(hull + hull[:1])


class _Tip:
    """The hover text of a generation point. Holds the panel weakly: a bound method would make a
    reference cycle, and Python's collector could then destroy Qt objects on a worker thread."""

    def __init__(self, panel: MapPanel) -> None:
        self._panel = weakref.ref(panel)

    def __call__(self, x: float, y: float, data: int) -> str:
        panel = self._panel()
        return panel.tip_text(data) if panel is not None else ""


class MapPanel(QWidget):
    """The projection plot with its colouring choice and legend."""

    generation_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.data: MapData | None = None
        self.highlighted = ""
        self.colour_by = QComboBox()
        for key, label in COLOUR_MODES.items():
            self.colour_by.addItem(label, key)
        self.colour_by.currentIndexChanged.connect(lambda _i: self._restyle())
        self.legend = QLabel("")
        self.legend.setObjectName("Muted")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.plot = pg.PlotWidget()
        self.plot.setBackground(None)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setAspectLocked(False)
        self._region_items: list[pg.PlotCurveItem] = []
        self._label_items: list[pg.TextItem] = []
        self.exemplars = pg.ScatterPlotItem(symbol="t", size=EXEMPLAR_SIZE, pen=None, hoverable=True,
                                            tip=lambda x, y, data: f"library example ({data})")
        self.points = pg.ScatterPlotItem(size=POINT_SIZE, pen=None, hoverable=True, tip=_Tip(self))
        self.plot.addItem(self.exemplars)
        self.plot.addItem(self.points)
        self.points.sigClicked.connect(self._on_clicked)
        top = QHBoxLayout()
        top.addWidget(QLabel("Map"))
        top.addStretch(1)
        top.addWidget(self.colour_by)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.legend)

    # -- model -> widget ---------------------------------------------------------------------------

    def set_data(self, data: MapData) -> None:
        """Show a new projection (exemplars, regions, labels and generation points)."""
        self.data = data
        pattern_ids = list(data.pattern_names)
        for item in (*self._region_items, *self._label_items):
            self.plot.removeItem(item)
        self._region_items, self._label_items = [], []
        patterns = np.array(data.exemplar_patterns)
        for index, pid in enumerate(pattern_ids):
            mine = data.exemplar_points[patterns == pid] if len(patterns) else np.zeros((0, 2))
            if not len(mine):
                continue
            hull = convex_hull(core_points(mine))
            line = QColor(colour(index))
            line.setAlpha(140)
            fill = QColor(colour(index))
            fill.setAlpha(22)
            region = pg.PlotCurveItem(hull[:, 0], hull[:, 1], pen=pg.mkPen(line, width=1), brush=pg.mkBrush(fill),
                                      fillLevel=None)
            region.setZValue(-10)
            label = pg.TextItem(data.pattern_names[pid], color=colour(index).darker(130), anchor=(0.5, 0.5))
            label.setPos(*np.median(mine, axis=0))
            label.setZValue(-5)
            self.plot.addItem(region)
            self.plot.addItem(label)
            self._region_items.append(region)
            self._label_items.append(label)
        self.exemplars.setData(pos=data.exemplar_points,
                               brush=[pg.mkBrush(colour(pattern_ids.index(p))) for p in data.exemplar_patterns],
                               data=[data.pattern_names[p] for p in data.exemplar_patterns])
        self._restyle()
        self.plot.autoRange()

    def set_colour_mode(self, mode: str) -> None:
        """Colour points by 'workflow' or 'pattern' (the top-scoring pattern)."""
        self.colour_by.setCurrentIndex(self.colour_by.findData(mode))

    def highlight_workflow(self, name: str) -> None:
        """Enlarge one workflow's points and dim the others ('' for none)."""
        self.highlighted = name
        self._restyle()

    def categories(self) -> list[str]:
        """The categories of the current colouring, in legend order."""
        if self.data is None:
            return []
        if self.colour_by.currentData() == "pattern":
            return list(self.data.pattern_names)
        return sorted(set(self.data.workflows))

    def point_brushes(self) -> list[QColor]:
        """The colour of every generation point, in order."""
        return [spot.brush().color() for spot in self.points.points()]

    def save_png(self, path: Path) -> bool:
        """Write the map (as shown) to a PNG file."""
        return self.plot.grab().save(str(path), "PNG")

    # -- internals ---------------------------------------------------------------------------------

    def _restyle(self) -> None:
        data = self.data
        if data is None:
            return
        by_pattern = self.colour_by.currentData() == "pattern"
        categories = self.categories()
        index = {name: i for i, name in enumerate(categories)}
        keys = data.top_patterns if by_pattern else data.workflows
        brushes, sizes, pens = [], [], []
        for key, workflow in zip(keys, data.workflows):
            color = QColor(colour(index[key]))
            chosen = workflow == self.highlighted
            if self.highlighted and not chosen:
                color.setAlpha(DIMMED_ALPHA)
            brushes.append(pg.mkBrush(color))
            sizes.append(HIGHLIGHT_SIZE if chosen else POINT_SIZE)
            pens.append(pg.mkPen("#111111", width=1.5) if chosen else pg.mkPen(None))
        self.points.setData(pos=data.points, brush=brushes, size=sizes, pen=pens,
                            data=list(range(len(data.generation_ids))))
        names = data.pattern_names if by_pattern else {c: c for c in categories}
        self.legend.setText(" ".join(
            f"<span style='color:{PALETTE[i % len(PALETTE)]}'>\u25cf</span>&nbsp;{names[c]}&nbsp;&nbsp;"
            for i, c in enumerate(categories)) + "&nbsp;&nbsp;\u25b2 library examples")

    def tip_text(self, data: int | None) -> str:
        """The hover text of the data-th generation point: id, workflow, prompt excerpt, top pattern."""
        if self.data is None or data is None:
            return ""
        d = self.data
        return (f"#{d.generation_ids[data]} · {d.workflows[data]}\n{d.excerpts[data]}\n"
                f"top pattern: {d.pattern_names.get(d.top_patterns[data], '')} ({d.top_scores[data]:.2f})")

    def _on_clicked(self, _item: object, points: list, _event: object) -> None:
        if self.data is not None and len(points):
            self.generation_clicked.emit(self.data.generation_ids[points[0].data()])
