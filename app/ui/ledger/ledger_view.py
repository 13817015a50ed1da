"""The Ledger view: search and filter the generation log, read one row in full, export, back up,
verify; an Events tab shows the event log.

The table is a LedgerTableModel (pages fetched on the database thread). Export, backup and
verification run on JobRunners of their own (one of each at a time), with their own connections. Emits (UI thread) verified(VerifyResult) after each
verification and open_conversation(conversation_id) from the detail pane.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QProgressDialog,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.progress import Progress
from app.core.store.ledger import VerifyResult
from app.core.store.queries import LogFilter, get_generation
from app.ui.dialogs import show_error, show_info
from app.ui.ledger.detail_pane import DetailPane
from app.ui.ledger.filter_bar import LedgerFilterBar
from app.ui.ledger.ledger_model import PROMPT_COLUMN, RESPONSE_COLUMN, LedgerTableModel
from app.ui.ledger.events_panel import EventsPanel
from app.ui.ledger.tree_panel import TreePanel
from app.ui.ledger.ledger_tasks import EXPORT_FORMATS, backup_job, export_job, format_for, verify_job
from app.ui.views import View
from app.workers.db_executor import DbExecutor
from app.workers.job_runner import JobRun, JobRunner

DETAIL_DEBOUNCE_MS = 80
COLUMN_WIDTHS = (64, 150, 64, 110, 130, 76, 60, 56)  # Prompt and Response share the rest
SPLITTER_SIZES = (480, 260)


class LedgerView(View, QWidget):
    """Filter bar, the lazily fetched table and the detail pane (UI thread)."""

    key, nav_title = "ledger", "Ledger"

    verified = Signal(object)
    open_conversation = Signal(str)

    def __init__(self, db: DbExecutor, ledger_path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._db, self._path = db, ledger_path
        self.model = LedgerTableModel(db, self)
        self._jump_to: int | None = None
        self.verifier, self.exports, self.backups = (JobRunner(name, self) for name in ("verify", "export", "backup"))
        self._progress: QProgressDialog | None = None
        self.last_verify: VerifyResult | None = None
        self._build()
        self.model.reset_done.connect(self._on_reset)
        self.model.rowsInserted.connect(lambda *_: self._update_count())
        self.filters.changed.connect(self.apply_filter)
        self.detail.open_conversation.connect(self.open_conversation)

    def _build(self) -> None:
        title = QLabel("Ledger")
        title.setObjectName("ViewTitle")
        self.count_label = QLabel("")
        self.count_label.setObjectName("Muted")
        self.export_button = QToolButton()
        self.export_button.setObjectName("ExportButton")
        self.export_button.setText("Export")
        self.export_button.setToolTip("Export the selected rows or every row matching the filters")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        menu.addAction("Selected rows…", lambda: self.export_dialog(selection_only=True))
        menu.addAction("All rows matching the filters…", lambda: self.export_dialog(selection_only=False))
        self.export_button.setMenu(menu)
        self.backup_button = QPushButton("Back up…")
        self.backup_button.setToolTip("Save a consistent copy of the whole ledger to one file, safe while it is "
                                      "being written (copying ledger.db alone misses rows still in its -wal file)")
        self.backup_button.clicked.connect(self.backup_dialog)
        self.verify_button = QPushButton("Verify ledger")
        self.verify_button.setToolTip("Recompute the hash chain and report the first row that was changed")
        self.verify_button.clicked.connect(lambda: self.verify())
        top = QHBoxLayout()
        top.addWidget(title)
        top.addWidget(self.count_label, 1)
        top.addWidget(self.export_button)
        top.addWidget(self.backup_button)
        top.addWidget(self.verify_button)
        self.filters = LedgerFilterBar(self._db)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setShowGrid(False)
        self.table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        vertical = self.table.verticalHeader()
        vertical.setVisible(False)
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(self.fontMetrics().height() + 10)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        for column, width in enumerate(COLUMN_WIDTHS):
            header.resizeSection(column, width)
        for column in (PROMPT_COLUMN, RESPONSE_COLUMN):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
        header.sectionClicked.connect(self._on_header_clicked)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.detail = DetailPane()
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes(list(SPLITTER_SIZES))
        generations = QWidget()
        generations_layout = QVBoxLayout(generations)
        generations_layout.setContentsMargins(0, 8, 0, 0)
        generations_layout.addWidget(self.filters)
        generations_layout.addWidget(self.splitter, 1)
        self.events = EventsPanel(self._db)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(generations, "Generations")
        self.tabs.addTab(self.events, "Events")
        self.tabs.currentChanged.connect(lambda index: self.events.reload() if index == 1 else None)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 12)
        layout.addLayout(top)
        self.tree = TreePanel(self._db)
        layout.addWidget(self.tree)
        layout.addWidget(self.tabs, 1)
        self._detail_timer = QTimer(self)
        self._detail_timer.setSingleShot(True)
        self._detail_timer.setInterval(DETAIL_DEBOUNCE_MS)
        self._detail_timer.timeout.connect(self._load_detail)

    # -- public ----------------------------------------------------------------------------------

    def apply_filter(self, flt: LogFilter) -> None:
        """Show the rows matching `flt`."""
        self.count_label.setText("Searching…" if flt.search else "Loading…")
        self.model.set_filter(flt)

    def reload(self) -> None:
        """Re-read the filter choices and the rows under the current filter."""
        self.filters.reload_choices()
        self.model.set_filter(self.filters.current_filter())
        self.tree.reload()

    def refresh(self) -> None:
        """Pick up rows logged since the last fetch (keeps the selection)."""
        self.filters.reload_choices()
        self.model.refresh()
        self.tree.reload()

    def select_generation(self, generation_id: int) -> None:
        """Select a generation's row, clearing the filters first if they hide it."""
        self._jump_to = generation_id
        if self.model.filter == LogFilter():
            self.model.locate(generation_id, self._select_row)
        else:
            self.filters.clear()

    def on_ledger_ready(self) -> None:
        """Read the filter choices and the first rows."""
        self.reload()

    def on_ledger_changed(self) -> None:
        """Pick up the new rows."""
        self.refresh()

    def shutdown(self) -> None:
        """Cancel a verification and wait for it, and for an export or backup (window close)."""
        for runner in (self.verifier, self.exports, self.backups):
            runner.shutdown()

    def verify(self, quiet: bool = False) -> None:
        """Walk the hash chain on a worker; show the result unless `quiet`, and jump to a bad row."""
        if self.verifier.busy:
            return
        (self.verifier.run(verify_job(self._path))
         .progress(self._on_verify_progress)
         .success(lambda result: self._on_verified(result, quiet))
         .failure(lambda exc: show_error(self, "The ledger could not be verified", str(exc)))
         .finally_(self._on_verify_done))
        self.verify_button.setEnabled(False)
        if not quiet:
            self._progress = QProgressDialog("Verifying the hash chain…", "Cancel", 0, 0, self)
            self._progress.setWindowModality(Qt.WindowModality.WindowModal)
            self._progress.setMinimumDuration(400)
            self._progress.canceled.connect(self.verifier.cancel)

    def export_dialog(self, selection_only: bool) -> None:
        """Ask for a file and a format, then export the selection or every matching row."""
        path, chosen = QFileDialog.getSaveFileName(self, "Export the ledger", "stillroom-export.jsonl",
                                                   ";;".join(EXPORT_FORMATS))
        if path:
            self.export_to(Path(path), format_for(Path(path), chosen), selection_only)

    def export_to(self, out: Path, fmt: str, selection_only: bool) -> JobRun | None:
        """Export on a worker; a dialog reports the outcome. Returns the run (None if busy)."""
        if self.exports.busy:
            return None
        ranges = None
        if selection_only:
            ranges = [(r.top(), r.bottom()) for r in self.table.selectionModel().selection()]
            if not ranges:
                show_info(self, "Nothing to export", "Select some rows first, or export every matching row.")
                return None
        job = export_job(self._path, out, fmt, self.model.filter, ranges, self.model.newest_first)
        run = (self.exports.run(job)
               .success(lambda count: show_info(self, "Export finished", f"{count:,} records written to {out}."))
               .failure(lambda exc: show_error(self, "The export failed", f"{out}: {exc}"))
               .finally_(lambda: self._after_write(self.export_button)))
        self.export_button.setEnabled(False)
        return run

    def backup_dialog(self) -> None:
        """Ask for a file (the dialog confirms replacing one), then back the ledger up to it."""
        path, _ = QFileDialog.getSaveFileName(self, "Back up the ledger", "stillroom-backup.db",
                                              "SQLite databases (*.db);;All files (*)")
        if path:
            self.backup_to(Path(path), force=True)

    def backup_to(self, out: Path, force: bool = False) -> JobRun | None:
        """Back the ledger up on a worker; a dialog reports the outcome and the Events tab reloads.
        Without `force` an existing file is refused. Returns the run (None if one is running)."""
        if self.backups.busy:
            return None
        run = (self.backups.run(backup_job(self._path, out, force))
               .success(lambda result: show_info(
                   self, "Backup finished", f"{result.generations:,} generations and {result.events:,} events "
                                            f"copied to {result.path} ({result.size_bytes:,} bytes)."))
               .failure(lambda exc: show_error(self, "The backup failed", str(exc)))
               .finally_(lambda: self._after_write(self.backup_button)))
        self.backup_button.setEnabled(False)
        return run

    # -- events ----------------------------------------------------------------------------------

    def _on_reset(self, total: int) -> None:
        self._update_count()
        if self._jump_to is not None:
            self.model.locate(self._jump_to, self._select_row)
        elif total:
            self.table.selectRow(0)
        else:
            self.detail.show_row(None)

    def _update_count(self) -> None:
        total = self.model.rowCount()
        filtered = self.model.filter != LogFilter()
        noun = "generation" if total == 1 else "generations"
        self.count_label.setText(f"{total:,} {noun}" + (" match" if filtered else ""))

    def _select_row(self, row: int) -> None:
        self._jump_to = None
        if not 0 <= row < self.model.rowCount():
            return
        index = self.model.index(row, 0)
        self.table.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        self.table.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)

    def _on_current_changed(self, *_: object) -> None:
        self._detail_timer.start()

    def _load_detail(self) -> None:
        index = self.table.currentIndex()
        summary = self.model.summary(index.row()) if index.isValid() else None
        if summary is None:
            if index.isValid():  # its page is on the way; try again when it is in
                self._detail_timer.start()
            return
        self._db.submit(lambda db: get_generation(db, summary.id), self.detail.show_row,
                        lambda exc: self.detail.show_row(None))

    def _on_header_clicked(self, section: int) -> None:
        if section == 0:
            self.model.toggle_order()

    def _on_verify_progress(self, item: Progress) -> None:
        if self._progress is not None:
            self._progress.setMaximum(max(1, item.total or 0))
            self._progress.setValue(item.done)

    def _on_verified(self, item: VerifyResult, quiet: bool) -> None:
        self.last_verify = item
        self.verified.emit(item)
        if self._progress is not None:
            self._progress.reset()
        if item.ok and not quiet:
            show_info(self, "The ledger is intact",
                      f"All {item.rows:,} rows check out. Chain head: row {item.head_id}, hash {item.head_hash}.")
        elif not item.ok:
            if not quiet:
                show_info(self, f"The chain is broken at row {item.bad_id}", item.problem or "", warning=True)
            if item.bad_id is not None:
                self.select_generation(item.bad_id)

    def _on_verify_done(self) -> None:
        self.verify_button.setEnabled(True)
        if self._progress is not None:
            self._progress.deleteLater()
            self._progress = None

    def _after_write(self, button: QWidget) -> None:
        """An export or backup ended: its button is free again and its event is in the log."""
        button.setEnabled(True)
        self.events.reload()
