"""The Usage view (UI thread): totals, tokens and generations per day (pyqtgraph, items created once
and updated with setOpts/setData), and tables per model, workflow and source for a chosen period.

Reads app.core.store.usage on the DbExecutor's thread; reloads when shown after the ledger changed.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from PySide6.QtCore import Qt

from app.core.store.usage import DIMENSIONS, UsageTotals, UsageWindow, usage_window
from app.ui.views import View
from app.workers.db_executor import DbExecutor

PERIODS = {"Last 7 days": 7, "Last 30 days": 30, "Last 90 days": 90, "All time": None}
DEFAULT_PERIOD = "Last 30 days"
TABLE_COLUMNS = ("Name", "Generations", "Errors", "Prompt tokens", "Completion tokens", "Generation time")
DIMENSION_TITLES = {"model": "By model", "workflow": "By workflow", "source": "By source"}
DAY_S = 86_400
BAR_SHARE = 0.8
BAR_COLOUR = "#4f7cac"
LINE_COLOUR = "#c0703a"


def format_duration(ms: float) -> str:
    """Generation time for people: seconds, minutes or hours."""
    seconds = ms / 1000
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def day_series(window: UsageWindow) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(day starts as UTC epoch seconds, tokens, generations) for every day of the window's span,
    days without generations as zeros."""
    if not window.daily:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    by_day = dict(window.daily)
    first = date.fromisoformat(window.since or window.daily[0][0])
    last = max(date.fromisoformat(window.daily[-1][0]), first)
    count = (last - first).days + 1
    days = [first + timedelta(days=i) for i in range(count)]
    totals = [by_day.get(d.isoformat(), UsageTotals()) for d in days]
    starts = np.array([datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp() for d in days])
    return (starts, np.array([t.total_tokens for t in totals], dtype=float),
            np.array([t.generations for t in totals], dtype=float))


class UsageView(View, QWidget):
    """Period choice, totals, two plots and three tables (UI thread)."""

    key, nav_title = "usage", "Usage"

    def __init__(self, db: DbExecutor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._db = db
        self._stale = True
        self.window_data: UsageWindow | None = None
        self.loading = False
        title = QLabel("Usage")
        title.setObjectName("ViewTitle")
        self.period = QComboBox()
        for label, days in PERIODS.items():
            self.period.addItem(label, days)
        self.period.setCurrentText(DEFAULT_PERIOD)
        self.period.currentIndexChanged.connect(lambda _i: self.reload())
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.reload)
        top = QHBoxLayout()
        top.addWidget(title)
        top.addStretch(1)
        top.addWidget(self.period)
        top.addWidget(self.refresh_button)
        self.summary = QLabel("")
        self.summary.setObjectName("Muted")
        self.summary.setWordWrap(True)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground(None)
        self.tokens_plot = self.graphics.addPlot(row=0, col=0, axisItems={"bottom": pg.DateAxisItem(utcOffset=0)})
        self.tokens_plot.setTitle("Tokens per day (prompt + completion)")
        self.tokens_plot.setMouseEnabled(x=False, y=False)
        self.tokens_bars = pg.BarGraphItem(x0=[], width=DAY_S * BAR_SHARE, height=[], brush=BAR_COLOUR, pen=None)
        self.tokens_plot.addItem(self.tokens_bars)
        self.generations_plot = self.graphics.addPlot(row=0, col=1,
                                                      axisItems={"bottom": pg.DateAxisItem(utcOffset=0)})
        self.generations_plot.setTitle("Generations per day")
        self.generations_plot.setMouseEnabled(x=False, y=False)
        self.generations_line = self.generations_plot.plot([], [], pen=pg.mkPen(LINE_COLOUR, width=2),
                                                           symbol="o", symbolSize=5, symbolBrush=LINE_COLOUR)
        self.tables: dict[str, QTableWidget] = {}
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        for dimension in DIMENSIONS:
            table = self._make_table()
            self.tables[dimension] = table
            self.tabs.addTab(table, DIMENSION_TITLES[dimension])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 12)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.graphics, 2)
        layout.addWidget(self.tabs, 3)

    @staticmethod
    def _make_table() -> QTableWidget:
        table = QTableWidget(0, len(TABLE_COLUMNS))
        table.setHorizontalHeaderLabels(TABLE_COLUMNS)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setAlternatingRowColors(True)
        table.setShowGrid(False)
        table.verticalHeader().setVisible(False)
        header = table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(TABLE_COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        return table

    # -- public ----------------------------------------------------------------------------------

    @property
    def days(self) -> int | None:
        """The chosen period in days (None: all time)."""
        return self.period.currentData()

    def reload(self) -> None:
        """Read the statistics of the chosen period (database thread); the widgets follow."""
        days = self.days
        self._stale = False
        self.loading = True
        self.summary.setText("Counting…")
        self._db.submit(lambda db: usage_window(db, days), self._on_loaded, self._on_failed)

    def on_ledger_changed(self) -> None:
        """See ledger_changed."""
        self.ledger_changed()

    def ledger_changed(self) -> None:
        """New rows were logged: reload now if shown, else when next shown."""
        if self.isVisible():
            self.reload()
        else:
            self._stale = True

    def show_window(self, window: UsageWindow) -> None:
        """Show `window`'s statistics (model -> widget)."""
        self.window_data = window
        totals = window.totals
        if totals.generations == 0:
            self.summary.setText("No generations in this period." if window.days else "No generations logged yet.")
        else:
            errors = f" ({totals.errors:,} not ok)" if totals.errors else ""
            self.summary.setText(
                f"{totals.generations:,} generations{errors} · {totals.prompt_tokens:,} prompt tokens · "
                f"{totals.completion_tokens:,} completion tokens · {format_duration(totals.duration_ms)} generating")
        starts, tokens, generations = day_series(window)
        self.tokens_bars.setOpts(x0=starts, height=tokens, width=DAY_S * BAR_SHARE)
        self.generations_line.setData(starts + DAY_S * BAR_SHARE / 2, generations)
        for plot in (self.tokens_plot, self.generations_plot):
            plot.enableAutoRange()
        for dimension, table in self.tables.items():
            groups = window.groups.get(dimension, [])
            table.setRowCount(len(groups))
            for row, group in enumerate(groups):
                t = group.totals
                cells = (group.label, f"{t.generations:,}", f"{t.errors:,}", f"{t.prompt_tokens:,}",
                         f"{t.completion_tokens:,}", format_duration(t.duration_ms))
                for column, text in enumerate(cells):
                    item = QTableWidgetItem(text)
                    if column:
                        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    else:
                        item.setToolTip(group.key)
                    table.setItem(row, column, item)

    # -- events ----------------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._stale:
            self.reload()

    def _on_loaded(self, window: UsageWindow) -> None:
        self.loading = False
        if window.days == self.days:  # a reply for a period no longer chosen is dropped
            self.show_window(window)

    def _on_failed(self, exc: Exception) -> None:
        self.loading = False
        self.summary.setText(f"The usage statistics could not be read: {exc}")
