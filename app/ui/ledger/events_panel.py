"""The Ledger view's Events tab: the event log (exports, imports, statements, keys, models, settings,
backups), newest first, with the state of its hash chain. Read on the database thread (UI thread here)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from PySide6.QtCore import Qt
from sqlite_utils import Database

from app.core.store.events import Event, EventVerifyResult, list_events, verify_events
from app.workers.db_executor import DbExecutor

SHOWN_EVENTS = 1_000
COLUMNS = ("#", "When (UTC)", "Kind", "What happened")
COLUMN_WIDTHS = (56, 150, 130)


@dataclass(frozen=True)
class EventsSnapshot:
    """What the panel shows: the newest events and the result of walking their chain."""

    events: list[Event]
    chain: EventVerifyResult


def read_events(db: Database) -> EventsSnapshot:
    """The newest SHOWN_EVENTS events and the event chain's verification (database thread)."""
    return EventsSnapshot(list_events(db, limit=SHOWN_EVENTS), verify_events(db))


class EventsPanel(QWidget):
    """A table of events and the selected event's details (UI thread); reload() re-reads them."""

    def __init__(self, db: DbExecutor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._db = db
        self.events: list[Event] = []
        self.chain_label = QLabel("")
        self.chain_label.setObjectName("Muted")
        self.reload_button = QPushButton("Reload")
        self.reload_button.clicked.connect(self.reload)
        top = QHBoxLayout()
        top.addWidget(self.chain_label, 1)
        top.addWidget(self.reload_button)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        for column, width in enumerate(COLUMN_WIDTHS):
            header.resizeSection(column, width)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.currentCellChanged.connect(lambda row, *_: self._show_details(row))
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.details)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 8, 0, 0)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)

    def reload(self) -> None:
        """Read the events again (database thread); the table follows."""
        self.chain_label.setText("Loading events…")
        self._db.submit(read_events, self.show_snapshot,
                        lambda exc: self.chain_label.setText(f"The event log could not be read: {exc}"))

    def show_snapshot(self, snapshot: EventsSnapshot) -> None:
        """Show `snapshot` (model -> widget)."""
        self.events = snapshot.events
        self.table.setRowCount(len(self.events))
        for row, event in enumerate(self.events):
            for column, text in enumerate((str(event.id), event.at[:19].replace("T", " "), event.kind, event.summary)):
                item = QTableWidgetItem(text)
                if column == len(COLUMNS) - 1:
                    item.setToolTip(text)
                self.table.setItem(row, column, item)
        chain = snapshot.chain
        if not chain.ok:
            self.chain_label.setText(f"The event chain is broken at event {chain.bad_id}: {chain.problem}")
        elif chain.head_hash is None:
            self.chain_label.setText("No events yet: exports, imports, statements, API keys, models, settings "
                                     "and backups are recorded here.")
        else:
            self.chain_label.setText(f"{chain.rows:,} events, chain intact (head {chain.head_hash[:16]}…)")
        if self.events:
            self.table.selectRow(0)
        else:
            self.details.clear()

    def _show_details(self, row: int) -> None:
        if not 0 <= row < len(self.events):
            self.details.clear()
            return
        event = self.events[row]
        self.details.setPlainText(f"{event.summary}\n\n{json.dumps(event.details, indent=2, ensure_ascii=False)}"
                                  f"\n\nevent hash {event.row_hash}")
