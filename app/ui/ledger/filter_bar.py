"""The Ledger view's search field and filters (model, workflow, source, status, date), as a LogFilter.

UI thread. The choices for model and workflow are read on the database thread by reload_choices().
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Any

from PySide6.QtCore import QDate, Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QDateEdit, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget
from sqlite_utils import Database

from app.core.models.registry import list_models
from app.core.store.queries import LogFilter, distinct_values
from app.core.store.schema import SOURCES, STATUSES
from app.workers.db_executor import DbExecutor

SEARCH_DEBOUNCE_MS = 200
DATE_RANGES = (("Any time", None), ("Today", 0), ("Last 7 days", 7), ("Last 30 days", 30), ("Custom…", -1))
CUSTOM = -1
ANY = "Any"


def model_choices(db: Database) -> tuple[list[tuple[str, str]], list[str]]:
    """(sha256, label) of models that appear in the log, and the workflow names (database thread)."""
    names = {model["sha256"]: model["name"] for model in list_models(db)}
    models = [(sha, f"{names.get(sha) or 'unregistered model'} · {sha[:8]}")
              for sha in distinct_values(db, "model_sha256")]
    return sorted(models, key=lambda item: item[1].lower()), distinct_values(db, "workflow")


def _utc_iso(day: QDate, end: bool = False) -> str:
    moment = datetime.combine(day.toPython(), time.min).astimezone()
    if end:
        moment += timedelta(days=1)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


class LedgerFilterBar(QWidget):
    """Search plus filters. Emits changed(LogFilter) (UI thread), search debounced while typing."""

    changed = Signal(object)

    def __init__(self, db: DbExecutor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._db = db
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search prompts, responses and system prompts (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.model = self._combo("Model")
        self.workflow = self._combo("Workflow")
        self.source = self._combo("Source", [(s, s) for s in SOURCES])
        self.status = self._combo("Status", [(s, s) for s in STATUSES])
        self.dates = QComboBox()
        self.dates.setToolTip("When the generation started")
        for label, days in DATE_RANGES:
            self.dates.addItem(label, days)
        today = QDate.currentDate()
        self.since = QDateEdit(today.addDays(-7))
        self.until = QDateEdit(today)
        for edit in (self.since, self.until):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setVisible(False)
            edit.dateChanged.connect(self._emit)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Clear the search and every filter")
        self.clear_button.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search, 3)
        for widget in (self.model, self.workflow, self.source, self.status, self.dates, self.since):
            layout.addWidget(widget, 1 if widget is not self.since else 0)
        self._dash = QLabel("–")
        self._dash.setVisible(False)
        layout.addWidget(self._dash)
        layout.addWidget(self.until)
        layout.addWidget(self.clear_button)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(SEARCH_DEBOUNCE_MS)
        self._debounce.timeout.connect(self._emit)
        self.search.textChanged.connect(self._debounce.start)
        self.search.returnPressed.connect(self._emit_now)
        for combo in (self.model, self.workflow, self.source, self.status):
            combo.currentIndexChanged.connect(self._emit)
        self.dates.currentIndexChanged.connect(self._on_dates)
        self._quiet = False

    def _combo(self, label: str, items: list[tuple[str, str]] | None = None) -> QComboBox:
        combo = QComboBox()
        combo.setToolTip(f"Filter by {label.lower()}")
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        combo.setMinimumContentsLength(8)
        combo.addItem(f"{label}: {ANY}", None)
        for value, text in items or []:
            combo.addItem(text, value)
        return combo

    # -- public ----------------------------------------------------------------------------------

    def current_filter(self) -> LogFilter:
        """The LogFilter the widgets describe."""
        since = until = None
        days = self.dates.currentData()
        if days == CUSTOM:
            since, until = _utc_iso(self.since.date()), _utc_iso(self.until.date(), end=True)
        elif days is not None:
            since = _utc_iso(QDate.currentDate().addDays(-days))
        return LogFilter(
            workflow=self.workflow.currentData(), source=self.source.currentData(),
            status=self.status.currentData(), model_sha256=self.model.currentData(),
            search=self.search.text().strip() or None, since=since, until=until,
        )

    def reload_choices(self) -> None:
        """Re-read the models and workflows in the log (database thread), keeping the selection."""
        self._db.submit(model_choices, self._set_choices)

    def clear(self) -> None:
        """Reset search and filters; emits changed once."""
        self._quiet = True
        self.search.clear()
        for combo in (self.model, self.workflow, self.source, self.status, self.dates):
            combo.setCurrentIndex(0)
        self._quiet = False
        self._debounce.stop()
        self._emit()

    def set_search(self, text: str) -> None:
        """Set the search text and apply it at once."""
        self.search.setText(text)
        self._emit_now()

    def focus_search(self) -> None:
        """Put the cursor in the search field, text selected (Ctrl+F)."""
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    # -- internals -------------------------------------------------------------------------------

    def _set_choices(self, choices: tuple[list[tuple[str, str]], list[str]]) -> None:
        models, workflows = choices
        self._quiet = True
        for combo, items in ((self.model, models), (self.workflow, [(w, w) for w in workflows])):
            current = combo.currentData()
            label = combo.itemText(0)
            combo.clear()
            combo.addItem(label, None)
            for value, text in items:
                combo.addItem(text, value)
            combo.setCurrentIndex(max(0, combo.findData(current)) if current is not None else 0)
        self._quiet = False

    def _on_dates(self) -> None:
        custom = self.dates.currentData() == CUSTOM
        for widget in (self.since, self._dash, self.until):
            widget.setVisible(custom)
        self._emit()

    def _emit_now(self) -> None:
        self._debounce.stop()
        self._emit()

    def _emit(self, *_: Any) -> None:
        if not self._quiet:
            self.changed.emit(self.current_filter())
