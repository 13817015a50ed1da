"""The map: generations' prompts and the pattern library's exemplars in one 2-D projection (UI thread).

pyqtgraph items are created once and updated with setData. Pattern regions are the convex hulls of
their exemplars' cores, labelled. Level of detail keeps pan and zoom fluid with many points: after
the view settles (LOD_DELAY_MS), the points inside it are drawn one by one when there are at most
POINTS_LIMIT of them, otherwise as a coloured density image of the view; while panning, what is
drawn just moves. Points are coloured by workflow, top pattern, level, time or model, optionally
sized by score; hover shows a prompt excerpt; a click emits generation_clicked(id); a box or lasso
drag (select modes) emits selection_changed(list of generation ids).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.core.audit.map_data import MapData, extends
from app.core.audit.map_geometry import (
    DensityGrid,
    ViewIndex,
    appended,
    convex_hull,
    core_points,
    points_in_polygon,
    separate_labels,
)
from app.ui.audit.map_style import (
    COLOUR_MODES,
    PALETTE,
    POINT_SIZE,
    Colouring,
    colouring,
    extend_colouring,
    point_sizes,
)
from app.ui.audit.map_view_box import MapViewBox, PointTip
from app.ui.audit.plot_export import save_png, save_svg

SELECT_MODES = {"pan": "Pan and zoom", "box": "Box select", "lasso": "Lasso select"}
HIGHLIGHT_SIZE, DIMMED_ALPHA, EXEMPLAR_SIZE, EXEMPLAR_ALPHA = 12, 90, 6, 120
LABEL_GAP_PX = 2           # pixels kept between two pattern labels
POINTS_LIMIT = 12_000      # more points than this in view: a density image instead
DENSITY_CELL_PX = 2        # screen pixels per density cell
LOD_DELAY_MS = 40
RANGE_PADDING = 0.05


def colour(index: int) -> QColor:
    """The index-th category colour."""
    return QColor(PALETTE[index % len(PALETTE)])


def faded(index: int) -> QColor:
    """The index-th category colour, translucent (the library's examples stay behind the prompts)."""
    shade = colour(index)
    shade.setAlpha(EXEMPLAR_ALPHA)
    return shade


def label_anchor(x: float, points: np.ndarray) -> float:
    """Horizontal anchor of a label at x: left-aligned in the left third of the map, right-aligned in
    the right third, centred between, so that labels near an edge are not cut off."""
    low, high = float(points[:, 0].min()), float(points[:, 0].max())
    where = (x - low) / (high - low) if high > low else 0.5
    return 0.0 if where < 1 / 3 else 1.0 if where > 2 / 3 else 0.5


class MapPanel(QWidget):
    """The projection plot with its colouring, sizing and selection choices and a legend."""

    generation_clicked = Signal(int)
    selection_changed = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.data: MapData | None = None
        self.highlighted = ""
        self.selected = np.zeros(0, dtype=np.int64)
        self.shown = np.zeros(0, dtype=np.int64)       # indices drawn as points now
        self.density_shown = False
        self._colouring: Colouring | None = None
        self._index: ViewIndex | None = None
        self._sizes = np.zeros(0)
        self._workflow_names: list[str] = []
        self._workflow_codes = np.zeros(0, dtype=np.int64)
        self._density_grid: DensityGrid | None = None  # the density image shown, while a refresh may add to it
        self._build()

    def _build(self) -> None:
        self.colour_by = QComboBox()
        for key, label in COLOUR_MODES.items():
            self.colour_by.addItem(label, key)
        self.colour_by.currentIndexChanged.connect(lambda _i: self._restyle())
        self.size_by_score = QCheckBox("Size by score")
        self.size_by_score.toggled.connect(lambda _on: self._restyle())
        self.select_mode = QComboBox()
        for key, label in SELECT_MODES.items():
            self.select_mode.addItem(label, key)
        self.select_mode.currentIndexChanged.connect(self._on_select_mode)
        self.legend = QLabel("")
        self.legend.setObjectName("Muted")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.view_box = MapViewBox()
        self.view_box.polygon_drawn.connect(self.select_polygon)
        self.plot = pg.PlotWidget(viewBox=self.view_box)
        self.plot.setBackground(None)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self._region_items: list[pg.PlotCurveItem] = []
        self._label_items: list[pg.TextItem] = []
        self._label_pids: list[str] = []
        self._label_anchors: dict[str, tuple[float, ...]] = {}
        self.density = pg.ImageItem(axisOrder="row-major")
        self.density.setZValue(-1)
        self.exemplars = pg.ScatterPlotItem(symbol="t", size=EXEMPLAR_SIZE, pen=None, hoverable=True,
                                            tip=lambda x, y, data: f"library example ({data})")
        self.points = pg.ScatterPlotItem(size=POINT_SIZE, pen=None, hoverable=True, tip=PointTip(self))
        self.overlay = pg.ScatterPlotItem(size=HIGHLIGHT_SIZE, pen=pg.mkPen("#111111", width=1.5), hoverable=True,
                                          tip=PointTip(self))
        self.selection_marks = pg.ScatterPlotItem(size=HIGHLIGHT_SIZE + 4, symbol="o", brush=None,
                                                  pen=pg.mkPen("#e11d48", width=1.5))
        for item in (self.density, self.exemplars, self.points, self.overlay, self.selection_marks):
            self.plot.addItem(item)
        self.points.sigClicked.connect(self._on_clicked)
        self.overlay.sigClicked.connect(self._on_clicked)
        self._lod_timer = QTimer(self)
        self._lod_timer.setSingleShot(True)
        self._lod_timer.setInterval(LOD_DELAY_MS)
        self._lod_timer.timeout.connect(self.update_lod)
        self.view_box.sigRangeChanged.connect(lambda *_a: self._lod_timer.start())
        self.view_box.sigRangeChanged.connect(lambda *_a: self.place_labels())
        self.view_box.sigResized.connect(lambda *_a: self.place_labels())
        top = QHBoxLayout()
        top.addWidget(QLabel("Map"))
        self.method_label = QLabel("")
        self.method_label.setObjectName("Muted")
        top.addWidget(self.method_label)
        top.addStretch(1)
        top.addWidget(self.select_mode)
        top.addWidget(self.size_by_score)
        top.addWidget(self.colour_by)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.legend)

    # -- model -> widget ---------------------------------------------------------------------------

    def set_data(self, data: MapData, keep_view: bool = False) -> None:
        """Show a projection (exemplars, regions, labels, generation points); keep_view keeps the
        current pan and zoom (an incremental refresh)."""
        previous, self.data = self.data, data
        appended = keep_view and previous is not None and extends(previous, data)
        if appended:  # a refresh: only the new points are placed, coded and coloured
            self._append(previous, data)
        else:
            self._index = ViewIndex(data.points)
            self._code_workflows(data)
        self.selected = self.selected[self.selected < len(data.generation_ids)] if keep_view else \
            np.zeros(0, dtype=np.int64)
        self.method_label.setText(f"({data.method.upper()}, {len(data.generation_ids):,} generations)")
        if keep_view and previous is not None and previous.exemplar_points is data.exemplar_points:
            if not appended:
                self._restyle()  # a refresh: the library's regions and labels are as they were
            return
        for item in (*self._region_items, *self._label_items):
            self.plot.removeItem(item)
        self._region_items, self._label_items, self._label_pids = [], [], []
        patterns = np.array(data.exemplar_patterns)
        self._label_anchors = {pid: tuple(float(v) for v in np.median(data.exemplar_points[patterns == pid], axis=0))
                               for pid in data.pattern_ids if (patterns == pid).any()}
        for index, pid in enumerate(data.pattern_ids):
            mine = data.exemplar_points[patterns == pid] if len(patterns) else np.zeros((0, 2))
            if not len(mine):
                continue
            hull = convex_hull(core_points(mine))
            line, fill = QColor(colour(index)), QColor(colour(index))
            line.setAlpha(140)
            fill.setAlpha(22)
            region = pg.PlotCurveItem(hull[:, 0], hull[:, 1], pen=pg.mkPen(line, width=1), brush=pg.mkBrush(fill),
                                      fillLevel=None)
            region.setZValue(-10)
            label = pg.TextItem(data.pattern_names[pid], color=colour(index).darker(130),
                                anchor=(label_anchor(self._label_anchors[pid][0], data.exemplar_points), 0.5))
            label.setPos(*self._label_anchors[pid])
            label.setZValue(-5)
            self.plot.addItem(region)
            self.plot.addItem(label)
            self._region_items.append(region)
            self._label_items.append(label)
            self._label_pids.append(pid)
        self.exemplars.setData(pos=data.exemplar_points,
                               brush=[pg.mkBrush(faded(data.pattern_ids.index(p))) for p in data.exemplar_patterns],
                               data=[data.pattern_names[p] for p in data.exemplar_patterns])
        if not keep_view:
            self.reset_view()
        self.place_labels()
        self._restyle()

    def place_labels(self) -> None:
        """Move the pattern labels apart at the current zoom so that no two overlap on screen (each
        stays as near its pattern's centre as it can); run again whenever the view's range changes."""
        items = self._label_items
        if not items:
            return
        scale_x, scale_y = self.view_box.viewPixelSize()
        if not scale_x or not scale_y:
            return
        anchors = [self._label_anchors[pid] for pid in self._label_pids]
        sizes = [(item.boundingRect().width() * scale_x, item.boundingRect().height() * scale_y) for item in items]
        placed = separate_labels(anchors, sizes, [item.anchor.x() for item in items], LABEL_GAP_PX * scale_y)
        for item, position in zip(items, placed):
            item.setPos(*position)

    def reset_view(self) -> None:
        """Zoom to show every point and exemplar."""
        if self.data is None:
            return
        everything = np.vstack([self.data.points.reshape(-1, 2), self.data.exemplar_points.reshape(-1, 2)])
        if not len(everything):
            return
        low, high = everything.min(axis=0), everything.max(axis=0)
        pad = (high - low) * RANGE_PADDING + 1e-6
        self.view_box.setRange(xRange=(low[0] - pad[0], high[0] + pad[0]), yRange=(low[1] - pad[1], high[1] + pad[1]),
                               padding=0)

    def set_colour_mode(self, mode: str) -> None:
        """Colour points by 'workflow', 'pattern', 'level', 'time' or 'model'."""
        self.colour_by.setCurrentIndex(self.colour_by.findData(mode))

    def set_select_mode(self, mode: str) -> None:
        """'pan', 'box' or 'lasso': what a left drag on the map does."""
        self.select_mode.setCurrentIndex(self.select_mode.findData(mode))

    def highlight_workflow(self, name: str) -> None:
        """Draw one workflow's points large and outlined, the others dimmed ('' for none)."""
        self.highlighted = name
        self.update_lod()

    def categories(self) -> list[str]:
        """The legend labels of the current colouring, in order."""
        return list(self._colouring.labels) if self._colouring else []

    def point_brushes(self) -> list[QColor]:
        """The colour of every generation point drawn now (points and overlay), in index order."""
        spots = [*self.points.points(), *self.overlay.points()]
        return [spot.brush().color() for spot in sorted(spots, key=lambda s: s.data())]

    def highlighted_indices(self) -> np.ndarray:
        """Indices of the points drawn highlighted now."""
        return np.array(sorted(spot.data() for spot in self.overlay.points()), dtype=np.int64)

    def select_polygon(self, polygon: np.ndarray) -> None:
        """Select the generations inside a polygon (view coordinates); emits selection_changed(ids)."""
        if self.data is None:
            return
        self.selected = points_in_polygon(self.data.points, polygon)
        self._draw_selection()
        self.selection_changed.emit([self.data.generation_ids[i] for i in self.selected])

    def clear_selection(self) -> None:
        """Select nothing."""
        self.select_polygon(np.zeros((0, 2)))

    def save_png(self, path: Path) -> bool:
        """Write the map (as shown) to a PNG file."""
        return save_png(self.plot, path)

    def save_svg(self, path: Path) -> None:
        """Write the map (as shown) to an SVG file."""
        save_svg(self.plot, path, "Stillroom audit map")

    # -- level of detail ---------------------------------------------------------------------------

    def update_lod(self) -> None:
        """Redraw what is in view: points one by one, or a density image when there are too many."""
        self._lod_timer.stop()
        data, colours = self.data, self._colouring
        if data is None or colours is None or self._index is None:
            return
        (x0, x1), (y0, y1) = self.view_box.viewRange()
        visible = self._index.in_rect(x0, x1, y0, y1)
        self._density_grid = None
        if self.highlighted in self._workflow_names:
            chosen = self._workflow_codes == self._workflow_names.index(self.highlighted)
            plain, marked = visible[~chosen[visible]], visible[chosen[visible]][:POINTS_LIMIT]
        else:
            plain, marked = visible, visible[:0]
        if len(visible) <= POINTS_LIMIT:
            self.density.setVisible(False)
            self.density_shown = False
            self._draw_points(self.points, plain, dim=bool(self.highlighted))
        else:
            every = len(plain) == len(data.generation_ids)  # all in view: no copy of the points
            grid = DensityGrid(data.points if every else data.points[plain],
                               colours.codes if every else colours.codes[plain], colours.rgb(), *self._view_key())
            self._density_grid = None if self.highlighted else grid  # a refresh adds its points to it
            self.density.setImage(grid.image(), autoLevels=False)
            self.density.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
            self.density.setOpacity(0.45 if self.highlighted else 1.0)
            self.density.setVisible(True)
            self.density_shown = True
            self._draw_points(self.points, np.zeros(0, dtype=np.int64), dim=False)
        self._draw_points(self.overlay, marked, dim=False, size=HIGHLIGHT_SIZE)
        self.shown = np.sort(np.concatenate([plain if not self.density_shown else plain[:0], marked]))
        self._draw_selection()

    def _draw_points(self, item: pg.ScatterPlotItem, indices: np.ndarray, dim: bool, size: float | None = None) -> None:
        colours, data = self._colouring, self.data
        assert colours is not None and data is not None
        table = [QColor(c) for c in colours.colours]
        if dim:
            for c in table:
                c.setAlpha(DIMMED_ALPHA)
        brushes = [pg.mkBrush(c) for c in table]
        codes = colours.codes[indices]
        item.setData(pos=data.points[indices], brush=[brushes[c] for c in codes],
                     size=self._sizes[indices] if size is None else size, data=indices)

    def _draw_selection(self) -> None:
        if self.data is None:
            return
        shown = self.selected[:POINTS_LIMIT]
        self.selection_marks.setData(pos=self.data.points[shown])

    def _code_workflows(self, data: MapData) -> None:
        names = sorted(set(data.workflows))
        lookup = {name: i for i, name in enumerate(names)}
        self._workflow_names = names
        self._workflow_codes = appended(np.zeros(0, dtype=np.int64), np.fromiter(  # room for refreshes
            (lookup[w] for w in data.workflows), dtype=np.int64, count=len(data.workflows)))

    def _append(self, previous: MapData, data: MapData) -> None:
        """set_data for `data` that appends points to `previous` (shown now): the work grows with the
        new points, not the map, except where a category appeared or changed (then as set_data)."""
        n = len(previous.generation_ids)
        assert self._index is not None
        self._index = self._index.extended(data.points)
        lookup = {name: i for i, name in enumerate(self._workflow_names)}
        if set(data.workflows[n:]) <= lookup.keys():
            self._workflow_codes = appended(self._workflow_codes, np.fromiter(
                (lookup[w] for w in data.workflows[n:]), dtype=np.int64, count=len(data.workflows) - n))
        else:
            self._code_workflows(data)
        extended = extend_colouring(self._colouring, previous, data, self.colour_by.currentData()) \
            if self._colouring is not None else None
        if extended is None or self.size_by_score.isChecked():
            self._restyle()
            return
        self._colouring = extended
        self._sizes = appended(self._sizes, np.full(len(data.generation_ids) - n, float(POINT_SIZE)))
        grid = self._density_grid
        if self.density_shown and grid is not None and (grid.rect, grid.shape) == self._view_key():
            grid.add(data.points[n:], extended.codes[n:])  # the new points' cells only
            self.density.setImage(grid.image(), autoLevels=False)
        else:
            self._lod_timer.start()  # redraw once the event loop has turned (as after a pan)

    def _view_key(self) -> tuple[tuple[float, float, float, float], tuple[int, int]]:
        """The rectangle in view and the density grid's shape (width, height) for it."""
        (x0, x1), (y0, y1) = self.view_box.viewRange()
        return ((x0, x1, y0, y1), (max(16, int(self.view_box.width() / DENSITY_CELL_PX)),
                                   max(16, int(self.view_box.height() / DENSITY_CELL_PX))))

    def _restyle(self) -> None:
        if self.data is None:
            return
        self._colouring = colouring(self.data, self.colour_by.currentData())
        # with room to spare, so that a refresh appends its points' codes and sizes in place
        self._colouring.codes = appended(np.zeros(0, dtype=np.int64), self._colouring.codes)
        self._sizes = appended(np.zeros(0), point_sizes(self.data, self.size_by_score.isChecked()))
        self.legend.setText(" ".join(
            f"<span style='color:{c}'>\u25cf</span>&nbsp;{label}&nbsp;&nbsp;"
            for c, label in zip(self._colouring.colours, self._colouring.labels)) + "&nbsp;&nbsp;\u25b2 library examples")
        self.update_lod()

    def tip_text(self, data: int | None) -> str:
        """The hover text of the data-th generation point: id, workflow, prompt excerpt, top pattern."""
        if self.data is None or data is None:
            return ""
        d = self.data
        return (f"#{d.generation_ids[data]} · {d.workflows[data]}\n{d.excerpts[data]}\n"
                f"top pattern: {d.pattern_names.get(d.top_patterns[data], '')} ({d.top_scores[data]:.2f})")

    def _on_select_mode(self, _index: int) -> None:
        self.view_box.select_mode = self.select_mode.currentData()

    def _on_clicked(self, _item: object, points: list, _event: object) -> None:
        if self.data is not None and len(points):
            self.generation_clicked.emit(self.data.generation_ids[int(points[0].data())])
