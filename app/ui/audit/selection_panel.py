"""The generations selected on the audit map with a box or lasso: a list, and export (UI thread)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.audit.map_data import MapData

COLUMNS = ("id", "workflow", "top pattern", "score", "prompt")
ROWS_SHOWN = 2_000
NOTHING = "Choose Box select or Lasso select above the map and drag over points to list them here."


class SelectionPanel(QWidget):
    """Lists the selection (at most ROWS_SHOWN rows; export writes all). Emits
    generation_activated(id) on a double click and export_requested() from its Export button."""

    generation_activated = Signal(int)
    export_requested = Signal()
    clear_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.generation_ids: list[int] = []
        self.summary = QLabel(NOTHING)
        self.summary.setWordWrap(True)
        self.export_button = QPushButton("Export selection…")
        self.export_button.setToolTip("Write the selected generations as JSONL or CSV")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.export_requested)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setEnabled(False)
        self.clear_button.clicked.connect(self.clear_requested)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.cellDoubleClicked.connect(self._on_double_click)
        bar = QHBoxLayout()
        bar.addWidget(self.summary, 1)
        bar.addWidget(self.clear_button)
        bar.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)

    def set_selection(self, data: MapData | None, indices: np.ndarray) -> None:
        """Show the selected points (indices into `data`) (model -> widget)."""
        self.generation_ids = [data.generation_ids[i] for i in indices] if data is not None else []
        count = len(self.generation_ids)
        self.summary.setText(NOTHING if not count else
                             f"{count:,} generations selected" + (f" (the first {ROWS_SHOWN:,} listed)"
                                                                   if count > ROWS_SHOWN else "") + ".")
        self.export_button.setEnabled(bool(count))
        self.clear_button.setEnabled(bool(count))
        shown = list(indices[:ROWS_SHOWN]) if data is not None else []
        self.table.setRowCount(len(shown))
        for row, i in enumerate(shown):
            values = (str(data.generation_ids[i]), data.workflows[i], data.pattern_names.get(data.top_patterns[i], ""),
                      f"{data.top_scores[i]:.2f}", data.excerpts[i])
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                if column == 0:
                    item.setData(Qt.ItemDataRole.UserRole, int(data.generation_ids[i]))
                self.table.setItem(row, column, item)

    def _on_double_click(self, row: int, _column: int) -> None:
        self.generation_activated.emit(int(self.table.item(row, 0).data(Qt.ItemDataRole.UserRole)))
