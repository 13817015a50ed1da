"""The audit timeline (UI thread): generations per hour or day stacked by workflow, and each
pattern's mean score per bin. Built from the map's data (build_timeline, numpy only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QPalette, QShowEvent
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.core.audit.map_data import MapData, extends
from app.core.audit.patterns import PatternLibrary
from app.core.audit.timeline import UNITS, Timeline, build_timeline, extend_timeline, pick_unit
from app.ui.audit.plot_export import save_png, save_svg
from app.ui.audit.map_style import PALETTE

UNIT_CHOICES = {"auto": "Automatic bins", "hour": "Per hour", "day": "Per day"}
BAR_SHARE = 0.85
LEGEND_COLUMNS = 3
LEGEND_HEADROOM = 0.35  # room above the data for the legends


class TimelinePanel(QWidget):
    """Two stacked plots sharing a time axis; set_data() redraws both."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.data: MapData | None = None
        self._stale = False
        self.titles: dict[str, str] = {}
        self.timeline: Timeline | None = None
        self._curves: list[pg.PlotDataItem] = []
        self.unit = QComboBox()
        for key, label in UNIT_CHOICES.items():
            self.unit.addItem(label, key)
        self.unit.currentIndexChanged.connect(lambda _i: self._redraw())
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground(None)
        self.volume = self.graphics.addPlot(row=0, col=0, axisItems={"bottom": pg.DateAxisItem(utcOffset=0)})
        self.volume.setLabel("left", "generations")
        self.volume.setTitle("Generations per bin, by workflow")
        text = self.palette().color(QPalette.ColorRole.WindowText)
        back = self.palette().color(QPalette.ColorRole.Base)
        back.setAlpha(210)
        legend = {"labelTextSize": "8pt", "labelTextColor": text, "brush": pg.mkBrush(back), "colCount": LEGEND_COLUMNS}
        self.volume_legend = self.volume.addLegend(offset=(-10, 10), **legend)
        self.scores = self.graphics.addPlot(row=1, col=0, axisItems={"bottom": pg.DateAxisItem(utcOffset=0)})
        self.scores.setLabel("left", "mean score")
        self.scores.setTitle("Mean pattern score per bin")
        self.scores.setXLink(self.volume)
        self.scores.setYRange(0, 1)
        self.scores_legend = self.scores.addLegend(offset=(-10, 10), **legend)
        top = QHBoxLayout()
        top.addWidget(QLabel("Timeline"))
        top.addStretch(1)
        top.addWidget(self.unit)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.graphics, 1)

    def set_data(self, data: MapData, library: PatternLibrary, lazy: bool = False) -> None:
        """Redraw from a map's data (model -> widget); the legend names patterns by their short_name.
        lazy: while the panel is hidden, only keep the data and redraw when it is shown (a refresh
        of a large audit then costs the UI thread nothing until the timeline is looked at)."""
        previous, self.data = self.data, data
        self.titles = {pid: pattern.short_name for pid, pattern in library.patterns.items()}
        self._stale = lazy and not self.isVisible()
        if not self._stale:
            self._redraw(previous if lazy else None)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt's name)
        """Draw data that arrived while the panel was hidden."""
        super().showEvent(event)
        if self._stale:
            self._stale = False
            self._redraw()

    def _clear(self) -> None:
        self.volume.clear()
        self.scores.clear()
        self.volume_legend.clear()
        self.scores_legend.clear()
        self._curves = []

    def bars(self) -> list[pg.BarGraphItem]:
        """The stacked bar items, one per workflow."""
        return [item for item in self.volume.items if isinstance(item, pg.BarGraphItem)]

    def save_png(self, path: Path) -> bool:
        """Write both plots to a PNG file."""
        return save_png(self.graphics, path)

    def save_svg(self, path: Path) -> None:
        """Write both plots to an SVG file."""
        save_svg(self.graphics, path, "Stillroom audit timeline")

    def _redraw(self, previous: MapData | None = None) -> None:
        """Draw the data's timeline; when it is `previous` (drawn now) with points appended (a
        refresh), only the new points are binned into the drawn timeline (extend_timeline), and the
        drawn bars and curves take the new values in place (no items or legend rows made again)."""
        data = self.data
        if data is None:
            self._clear()
            return
        unit = self.unit.currentData()
        if unit == "auto":
            unit = pick_unit(data.started)
        timeline = None
        shown = self.timeline
        if previous is not None and shown is not None and shown.seconds == UNITS[unit] and extends(previous, data) \
                and shown.points == len(previous.generation_ids):
            n = len(previous.generation_ids)
            timeline = extend_timeline(shown, data.started[n:], data.workflows[n:], data.scores[n:])
        in_place = timeline is not None and len(self.bars()) == len(timeline.workflows) and bool(self._curves)
        if timeline is None:
            timeline = build_timeline(data.started, data.workflows, data.scores, data.pattern_ids, unit)
        self.timeline = timeline
        if not in_place:
            self._clear()
        if not len(timeline.bin_starts):
            return
        base = np.zeros(len(timeline.bin_starts))
        width = timeline.seconds * BAR_SHARE
        drawn = self.bars()
        for i, name in enumerate(timeline.workflows):
            heights = timeline.counts[i]
            if in_place:
                drawn[i].setOpts(x0=timeline.bin_starts, width=width, y0=base.copy(), height=heights)
            else:
                bar = pg.BarGraphItem(x0=timeline.bin_starts, width=width, y0=base.copy(), height=heights,
                                      brush=PALETTE[i % len(PALETTE)], pen=None)
                self.volume.addItem(bar)
                self.volume_legend.addItem(bar, name)
            base = base + heights
        centres = timeline.bin_starts + timeline.seconds / 2
        for i, pid in enumerate(timeline.pattern_ids):
            if in_place:
                self._curves[i].setData(centres, timeline.pattern_means[i])
                continue
            curve = self.scores.plot(centres, timeline.pattern_means[i], pen=pg.mkPen(PALETTE[i % len(PALETTE)], width=2),
                                     symbol="o", symbolSize=4, symbolBrush=PALETTE[i % len(PALETTE)], connect="finite")
            self.scores_legend.addItem(curve, self.titles[pid])
            self._curves.append(curve)
        self.volume.setTitle(f"Generations per {unit}, by workflow")
        self.scores.setTitle(f"Mean pattern score per {unit} (legend: the report's column titles)")
        self.volume.setXRange(timeline.bin_starts[0], timeline.bin_starts[-1] + timeline.seconds, padding=0.02)
        self.scores.setYRange(0, 1 + LEGEND_HEADROOM)
        self.volume.setYRange(0, max(1.0, float(base.max())) * (1 + LEGEND_HEADROOM), padding=0)
