"""A QAbstractTableModel over the generation log that fetches pages lazily on the database thread.

rowCount() is the number of rows matching the filter (one count query); cells come from pages of
PAGE_SIZE rows fetched when the view first asks for a row in them, so opening, scrolling to the end
or searching a 100,000-row ledger costs a count and a page or two, never the whole table. Results
from an older filter are dropped (each filter change starts a new epoch).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, NamedTuple

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from sqlite_utils import Database

from app.core.store.queries import LogFilter, count_generations, generation_position, list_generations
from app.ui.formatting import local_timestamp
from app.ui.theme import colors, current_scheme
from app.workers.db_executor import DbExecutor

PAGE_SIZE = 200
MAX_CACHED_PAGES = 64
SNIPPET_CHARS = 160
TOOLTIP_CHARS = 600
HEADERS = ("#", "Time", "Source", "Workflow", "Model", "Status", "Tokens", "Tok/s", "Prompt", "Response")
STATUS_COLUMN, PROMPT_COLUMN, RESPONSE_COLUMN = 5, 8, 9
NUMERIC_COLUMNS = (0, 6, 7)
QUERY_COLUMNS = ("id", "started_at", "source", "workflow", "model_name", "status", "prompt", "response",
                 "completion_tokens", "tokens_per_s", "conversation_id")
STATUS_COLORS = {"cancelled": "warning", "error": "danger"}
Index = QModelIndex | QPersistentModelIndex


class RowSummary(NamedTuple):
    """What the table shows of one generation (built on the database thread)."""

    id: int
    cells: tuple[str, ...]
    status: str
    conversation_id: str | None
    tooltip: str


def summarize(row: dict[str, Any]) -> RowSummary:
    """Display strings for one row: local time, one-line snippets of prompt and response."""
    rate = row.get("tokens_per_s")
    cells = (
        str(row["id"]), local_timestamp(row.get("started_at")), row.get("source") or "", row.get("workflow") or "",
        row.get("model_name") or "", row.get("status") or "",
        "" if row.get("completion_tokens") is None else str(row["completion_tokens"]),
        f"{rate:.1f}" if rate else "", _snippet(row.get("prompt")), _snippet(row.get("response")),
    )
    tooltip = f"Prompt:\n{(row.get('prompt') or '')[:TOOLTIP_CHARS]}\n\nResponse:\n{(row.get('response') or '')[:TOOLTIP_CHARS]}"
    return RowSummary(row["id"], cells, row.get("status") or "", row.get("conversation_id"), tooltip)


def _snippet(text: str | None) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1] + "…"


def fetch_page(db: Database, flt: LogFilter, page: int, newest_first: bool) -> list[RowSummary]:
    """One page of summaries (database thread)."""
    rows = list_generations(db, flt, limit=PAGE_SIZE, offset=page * PAGE_SIZE, newest_first=newest_first,
                            columns=QUERY_COLUMNS)
    return [summarize(row) for row in rows]


class LedgerTableModel(QAbstractTableModel):
    """The generation log under a LogFilter, newest first by default (UI thread).

    Emits reset_done(total) when a new filter's count and first page are in, and page_loaded(page)
    when a page arrives.
    """

    reset_done = Signal(int)
    page_loaded = Signal(int)

    def __init__(self, db: DbExecutor, parent: Any = None) -> None:
        super().__init__(parent)
        self._db = db
        self.filter = LogFilter()
        self.newest_first = True
        self._total = 0
        self._pages: OrderedDict[int, list[RowSummary]] = OrderedDict()
        self._pending: set[int] = set()
        self._filter_epoch = 0  # bumped by set_filter: older counts are dropped
        self._data_epoch = 0  # bumped whenever row indexes move: older pages are dropped
        self.loading = False

    # -- Qt model API ----------------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._total

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            if section == 0:
                return "# ▼" if self.newest_first else "# ▲"
            return HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        summary = self.summary(index.row())
        if summary is None:
            if role == Qt.ItemDataRole.DisplayRole and index.column() == 0:
                return "…"
            return None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return summary.cells[column]
        if role == Qt.ItemDataRole.ToolTipRole and column in (PROMPT_COLUMN, RESPONSE_COLUMN):
            return summary.tooltip
        if role == Qt.ItemDataRole.TextAlignmentRole and column in NUMERIC_COLUMNS:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and column == STATUS_COLUMN and summary.status in STATUS_COLORS:
            return QColor(colors(current_scheme())[STATUS_COLORS[summary.status]])
        return None

    # -- rows ------------------------------------------------------------------------------------

    def summary(self, row: int) -> RowSummary | None:
        """The row's summary if its page is loaded; otherwise asks for the page and returns None."""
        if not 0 <= row < self._total:
            return None
        page = row // PAGE_SIZE
        rows = self._pages.get(page)
        if rows is None:
            self._request_page(page)
            return None
        offset = row - page * PAGE_SIZE
        return rows[offset] if offset < len(rows) else None

    def is_loaded(self, row: int) -> bool:
        """Whether the row's page is in the cache (does not fetch)."""
        rows = self._pages.get(row // PAGE_SIZE)
        return rows is not None and row % PAGE_SIZE < len(rows)

    # -- filter and refresh ----------------------------------------------------------------------

    def set_filter(self, flt: LogFilter, newest_first: bool | None = None) -> None:
        """Show the rows matching `flt`: count and first page are fetched, then the model resets."""
        self.filter = flt
        if newest_first is not None:
            self.newest_first = newest_first
        self._filter_epoch += 1
        self.loading = True
        epoch, order = self._filter_epoch, self.newest_first

        def job(db: Database) -> tuple[int, list[RowSummary]]:
            return count_generations(db, flt), fetch_page(db, flt, 0, order)

        self._db.submit(job, lambda result: self._on_reset(epoch, result))

    def toggle_order(self) -> None:
        """Switch between newest first and oldest first."""
        self.set_filter(self.filter, not self.newest_first)

    def refresh(self) -> None:
        """Pick up rows added since the last fetch, keeping the view's selection and position."""
        epoch, flt, order = self._filter_epoch, self.filter, self.newest_first

        def job(db: Database) -> tuple[int, list[RowSummary]]:
            return count_generations(db, flt), fetch_page(db, flt, 0, order)

        self._db.submit(job, lambda result: self._on_refreshed(epoch, result))

    def locate(self, generation_id: int, callback: Any) -> None:
        """Find the row index of a generation under the current filter; callback(row) on the UI thread."""
        flt, order = self.filter, self.newest_first
        self._db.submit(lambda db: generation_position(db, flt, generation_id, newest_first=order), callback)

    # -- results (UI thread) ---------------------------------------------------------------------

    def _on_reset(self, epoch: int, result: tuple[int, list[RowSummary]]) -> None:
        if epoch != self._filter_epoch:
            return
        total, first = result
        self.beginResetModel()
        self._total = total
        self._restart_cache(first)
        self.endResetModel()
        self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, 0)
        self.loading = False
        self.reset_done.emit(total)

    def _on_refreshed(self, epoch: int, result: tuple[int, list[RowSummary]]) -> None:
        if epoch != self._filter_epoch:
            return
        total, first = result
        added = total - self._total
        if added < 0:
            self._on_reset(epoch, result)
        elif added:
            start = 0 if self.newest_first else self._total
            self.beginInsertRows(QModelIndex(), start, start + added - 1)
            self._total = total
            self._restart_cache(first)
            self.endInsertRows()
            self.dataChanged.emit(self.index(0, 0), self.index(self._total - 1, len(HEADERS) - 1))

    def _restart_cache(self, first_page: list[RowSummary]) -> None:
        """Forget every page (row indexes changed) and keep the freshly fetched first one."""
        self._data_epoch += 1
        self._pages.clear()
        self._pending.clear()
        self._pages[0] = first_page

    def _request_page(self, page: int) -> None:
        if page in self._pending:
            return
        self._pending.add(page)
        epoch, flt, order = self._data_epoch, self.filter, self.newest_first
        self._db.submit(lambda db: fetch_page(db, flt, page, order),
                        lambda rows: self._on_page(epoch, page, rows))

    def _on_page(self, epoch: int, page: int, rows: list[RowSummary]) -> None:
        if epoch != self._data_epoch:
            return
        self._pending.discard(page)
        self._pages[page] = rows
        while len(self._pages) > MAX_CACHED_PAGES:
            self._pages.popitem(last=False)
        first = page * PAGE_SIZE
        last = min(self._total, first + len(rows)) - 1
        if last >= first:
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(HEADERS) - 1))
        self.page_loaded.emit(page)

