"""The Audit view: run the audit on a worker thread, read the workflow report, the patterns' about
panels, the map of prompts and the timeline; select generations on the map; export the report
(HTML, Markdown), the plots (PNG, SVG) and a selection (JSONL, CSV).

Run audit runs audit_tasks.audit_job (its own ledger connection) on the view's JobRunner; the
ProgressStrip (progress and Cancel) sits next to it. Choosing UMAP for the map runs
audit_tasks.map_job the same way (the first fit takes minutes; PCA is instant). The encoder and
the pattern library are created on the worker thread when the first audit runs (torch is imported
then, never at window start).
ledger_changed() (new generations from chat, batch, server or import) re-runs the audit shortly
after, incrementally: only new prompts are embedded, scored and placed on the fitted map.
Emits (UI thread) audit_finished(AuditOutcome) after a run that was not cancelled.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.audit.embeddings import Encoder
from app.core.audit.patterns import PatternLibrary
from app.core.audit.report import to_html, to_markdown
from app.core.audit.projection import METHOD_NAMES, ProjectionStore
from app.core.audit.refresh import can_refresh
from app.core.audit.selection import export_selection
from app.core.outfiles import replace_file
from app.core.progress import Progress
from app.core.store.queries import get_generation
from app.ui.audit.audit_tasks import AuditOutcome, LazyModels, audit_job, map_job, refresh_job
from app.ui.audit.map_panel import MapPanel
from app.ui.audit.plot_export import ask_save_path
from app.ui.audit.selection_panel import SelectionPanel
from app.ui.audit.timeline_panel import TimelinePanel
from app.ui.audit.report_panel import (
    NO_SELECTION,
    InfoBrowser,
    PresentDialog,
    ReportTable,
    pattern_html,
    workflow_html,
)
from app.ui.dialogs import show_error
from app.ui.ledger.detail_pane import DetailPane
from app.ui.progress_strip import ProgressStrip
from app.ui.views import View
from app.workers.db_executor import DbExecutor
from app.workers.generator_thread import GeneratorFactory
from app.workers.job_runner import JobRunner

STAGES = {"starting": "Loading the embedding model…", "exemplars": "Embedding the library's examples",
          "prompts": "Embedding prompts", "scoring": "Scoring", "workflows": "Judging workflows",
          "map": "Projecting the map", "loading": "Loading UMAP (the first time takes a minute or more)…",
          "fitting": "Fitting the map", "epochs": "Fitting UMAP: epoch", "placing": "Placing new prompts on the map",
          "refresh": "Adding new generations to the audit…"}
REPORT_FILTERS = {"HTML (*.html)": ".html", "Markdown (*.md)": ".md"}
PLOT_FILTERS = {"PNG image (*.png)": ".png", "SVG drawing (*.svg)": ".svg"}
SELECTION_FILTERS = {"JSON Lines (*.jsonl)": ".jsonl", "CSV (*.csv)": ".csv"}
TAB_WORKFLOW, TAB_PATTERN, TAB_GENERATION, TAB_SELECTION = 0, 1, 2, 3
PLOT_MAP, PLOT_TIMELINE = 0, 1
REFRESH_DELAY_MS = 2_000


def describe(item: Progress) -> str:
    """The status line for an audit or map job's progress."""
    return STAGES.get(item.stage, item.stage) + (f" ({item.done} of {item.total})" if item.total else "…")


class AuditView(View, QWidget):
    """Toolbar (Run audit, Cancel, progress, Export), the report and details on the left, the map on
    the right (UI thread)."""

    key, nav_title = "audit", "Audit"
    audit_finished = Signal(object)

    def __init__(self, db: DbExecutor, ledger_path: Path, encoder: Encoder | None = None,
                 library: PatternLibrary | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._db, self._path = db, ledger_path
        self.models = LazyModels(encoder, library)
        self.store = ProjectionStore(ledger_path.parent)
        self.jobs = JobRunner("audit", self)
        self.shown_pattern = ""
        self._refresh_pending = False
        self.outcome: AuditOutcome | None = None
        self.refresh_timer = QTimer(self)
        self.refresh_timer.setSingleShot(True)
        self.refresh_timer.setInterval(REFRESH_DELAY_MS)
        self.refresh_timer.timeout.connect(self._refresh_now)
        self._build()

    def _build(self) -> None:
        title = QLabel("Audit")
        title.setObjectName("ViewTitle")
        self.run_button = QPushButton("Run audit")
        self.run_button.setToolTip("Compare every generation with the pattern library (new ones are embedded)")
        self.run_button.clicked.connect(self.run_audit)
        self.strip = ProgressStrip(self.jobs, describe,
                                   text="Run the audit to see how your workflows resemble the flagged patterns.")
        self.status = self.strip.label
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.export_button.setEnabled(False)
        menu = QMenu(self.export_button)
        menu.addAction("Report as HTML or Markdown…", self.export_report_dialog)
        menu.addAction("Map as PNG or SVG…", lambda: self.export_plot_dialog("map"))
        menu.addAction("Timeline as PNG or SVG…", lambda: self.export_plot_dialog("timeline"))
        self.export_button.setMenu(menu)
        self.method = QComboBox()
        for key, name in METHOD_NAMES.items():
            self.method.addItem(f"Map: {name}", key)
        self.method.setToolTip("PCA is instant. UMAP separates the patterns better; its first fit takes minutes, "
                               "then it is kept and new prompts are placed without refitting.")
        self.method.currentIndexChanged.connect(self._on_method)
        bar = QHBoxLayout()
        bar.addWidget(title)
        bar.addSpacing(12)
        bar.addWidget(self.run_button)
        bar.addWidget(self.strip, 1)
        bar.addWidget(self.method)
        bar.addWidget(self.export_button)

        self.table = ReportTable()
        self.table.workflow_selected.connect(self._on_workflow)
        self.table.pattern_clicked.connect(self.show_pattern)
        self.workflow_info = InfoBrowser(NO_SELECTION)
        self.workflow_info.pattern_link.connect(self.show_pattern)
        self.pattern_info = InfoBrowser("Click a pattern's column header to read what it is and why it is flagged.")
        self.detail = DetailPane()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.workflow_info, "Workflow")
        self.present_button = QPushButton("Present")
        self.present_button.setToolTip("Show this pattern's about panel full screen in large type (a classroom projector)")
        self.present_button.setEnabled(False)
        self.present_button.clicked.connect(self.present_pattern)
        about = QWidget()
        about_layout = QVBoxLayout(about)
        about_layout.setContentsMargins(0, 0, 0, 0)
        about_layout.addWidget(self.pattern_info, 1)
        about_layout.addWidget(self.present_button, 0, Qt.AlignmentFlag.AlignRight)
        self.tabs.addTab(about, "About the pattern")
        self.tabs.addTab(self.detail, "Generation")
        self.selection = SelectionPanel()
        self.selection.generation_activated.connect(self.show_generation)
        self.selection.export_requested.connect(self.export_selection_dialog)
        self.tabs.addTab(self.selection, "Selection")
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.table)
        left.addWidget(self.tabs)
        left.setSizes([260, 420])
        self.map = MapPanel()
        self.map.generation_clicked.connect(self.show_generation)
        self.map.selection_changed.connect(self._on_selection)
        self.selection.clear_requested.connect(self.map.clear_selection)
        self.timeline = TimelinePanel()
        self.plots = QTabWidget()
        self.plots.addTab(self.map, "Map")
        self.plots.addTab(self.timeline, "Timeline")
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.plots)
        self.splitter.setSizes([560, 520])
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.splitter, 1)

    # -- actions -----------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while an audit runs."""
        return self.jobs.busy

    def run_audit(self) -> None:
        """Start the audit on a worker thread (no-op while one runs)."""
        if self.jobs.busy:
            return
        self.refresh_timer.stop()
        self._start(audit_job(self._path, self.models.encoder, self.models.library, self.store,
                              self.method.currentData()), "audit")
        self.status.setText(STAGES["starting"])

    def project(self, method: str) -> None:
        """Rebuild the map with 'pca' or 'umap' on a worker thread (needs a finished audit)."""
        if self.method.currentData() != method:
            self.method.setCurrentIndex(self.method.findData(method))  # _on_method calls back here
            return
        if self.jobs.busy or self.outcome is None or self.outcome.map.method == method:
            return
        self._start(map_job(self._path, self.models.encoder, self.outcome.result, self.outcome.library, self.store,
                            method), "map")
        self.status.setText(STAGES["map"] + "…")

    def ledger_changed(self) -> None:
        """New generations arrived (chat, batch, server, import): refresh shortly, incrementally, if
        an audit has been shown; during a run, refresh once it ends."""
        if self.outcome is None:
            return
        if self.jobs.busy:
            self._refresh_pending = True
        elif not self.refresh_timer.isActive():  # a throttle, not a debounce: a long batch still refreshes
            self.refresh_timer.start()

    def _refresh_now(self) -> None:
        """New generations since the shown audit: fold only them in (refresh_job) when the shown
        audit allows it, else run the whole audit."""
        if self.jobs.busy or self.outcome is None:
            return
        if not can_refresh(self.outcome.result, self.outcome.map, self.store):
            self.run_audit()
            return
        self._start(refresh_job(self._path, self.models.encoder, self.outcome.library, self.store, self.outcome),
                    "audit")

    def _start(self, factory: GeneratorFactory, kind: str) -> None:
        """Run an audit ('audit') or map ('map') job; its outcome is shown when it ends."""
        self.run_button.setEnabled(False)
        self.method.setEnabled(False)
        is_map = kind == "map"
        (self.jobs.run(factory, kind)
         .success(self._finished)
         .failure(lambda exc: self._failed(exc, is_map))
         .cancelled(lambda: self.status.setText("Projection cancelled; the map is unchanged." if is_map else
                                                "Audit cancelled; what was scored is kept for the next run."))
         .finally_(self._after_run))

    def cancel(self) -> None:
        """Ask the running audit to stop; what it stored is reused by the next run."""
        self.jobs.cancel()

    def shutdown(self) -> None:
        """Cancel a running audit and wait for its thread (window close)."""
        self.jobs.shutdown()

    def on_ledger_changed(self) -> None:
        """See ledger_changed."""
        self.ledger_changed()


    def show_pattern(self, pattern_id: str) -> None:
        """Open a pattern's about panel."""
        library = self.outcome.library if self.outcome else self.models.library_made
        if library is None or pattern_id not in library.patterns:
            return
        self.pattern_info.setHtml(pattern_html(library, pattern_id))
        self.shown_pattern = pattern_id
        self.present_button.setEnabled(True)
        self.tabs.setCurrentIndex(TAB_PATTERN)

    def present_pattern(self) -> PresentDialog | None:
        """Open the shown pattern's about panel maximized, in large type."""
        library = self.outcome.library if self.outcome else self.models.library_made
        if library is None or self.shown_pattern not in library.patterns:
            return None
        dialog = PresentDialog(pattern_html(library, self.shown_pattern), library.patterns[self.shown_pattern].name, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.showMaximized()
        return dialog

    def show_generation(self, generation_id: int) -> None:
        """Read a generation on the database thread and show it in the Generation tab."""
        self.tabs.setCurrentIndex(TAB_GENERATION)
        self._db.submit(lambda db: get_generation(db, generation_id), self.detail.show_row,
                        lambda exc: self.detail.show_row(None))

    def export_report(self, path: Path) -> None:
        """Write the report as HTML (.html/.htm) or Markdown (anything else)."""
        if self.outcome is None:
            raise RuntimeError("no audit to export yet")
        text = to_html(self.outcome.result) if path.suffix.lower() in (".html", ".htm") else \
            to_markdown(self.outcome.result)
        with replace_file(path) as handle:  # owner-only: the report quotes prompts
            handle.write(text)

    def export_map_png(self, path: Path) -> bool:
        """Write the map as a PNG."""
        return self.map.save_png(path)

    def export_plot(self, which: str, path: Path) -> None:
        """Write the 'map' or the 'timeline' as PNG or SVG (by the file's suffix); OSError on failure."""
        panel = self.map if which == "map" else self.timeline
        if path.suffix.lower() == ".svg":
            panel.save_svg(path)
        elif not panel.save_png(path.with_suffix(".png") if path.suffix.lower() != ".png" else path):
            raise OSError(f"could not write {path}")

    def export_selection(self, path: Path) -> None:
        """Write the map's selection as JSONL or CSV on the database thread (errors in a dialog)."""
        data, ids = self.map.data, list(self.selection.generation_ids)
        audit = {}
        if data is not None:
            position = {gid: i for i, gid in enumerate(data.generation_ids)}
            audit = {gid: {"top_pattern": data.top_patterns[position[gid]],
                           "top_score": round(float(data.top_scores[position[gid]]), 4),
                           "level": data.levels[position[gid]] if data.levels else None} for gid in ids}
        self._db.submit(lambda db: export_selection(db, ids, path, audit),
                        lambda count: self.status.setText(f"Exported {count:,} generations to {path.name}."),
                        lambda exc: show_error(self, "Could not export the selection", str(exc)))

    def export_report_dialog(self) -> None:
        """Ask for a file and export the report."""
        target = ask_save_path(self, "Export the audit report", "audit.html", REPORT_FILTERS, (".html", ".htm", ".md"))
        if target is not None:
            try:
                self.export_report(target)
            except OSError as exc:
                show_error(self, "Could not export the report", str(exc))

    def export_plot_dialog(self, which: str) -> None:
        """Ask for a file and save the map or the timeline as PNG or SVG."""
        target = ask_save_path(self, f"Export the {which}", f"audit-{which}.png", PLOT_FILTERS, (".png", ".svg"))
        if target is not None:
            try:
                self.export_plot(which, target)
            except OSError as exc:
                show_error(self, f"Could not export the {which}", str(exc))

    def export_selection_dialog(self) -> None:
        """Ask for a file and export the selected generations."""
        target = ask_save_path(self, "Export the selection", "selection.jsonl", SELECTION_FILTERS, (".jsonl", ".csv"))
        if target is not None:
            self.export_selection(target)

    # -- signals -----------------------------------------------------------------------------------

    def _finished(self, outcome: AuditOutcome) -> None:
        self._show(outcome)
        self.audit_finished.emit(outcome)

    def _failed(self, exc: Exception, is_map: bool) -> None:
        show_error(self, "The map could not be projected" if is_map else "The audit failed", str(exc))
        self.status.setText("The map could not be projected; the map is unchanged." if is_map else
                            "The audit failed; what was scored is kept for the next run.")

    def _after_run(self) -> None:
        self.run_button.setEnabled(True)
        self.method.setEnabled(True)
        shown = self.outcome.map.method if self.outcome is not None else None
        if shown is not None and self.method.currentData() != shown:  # a map job that did not finish
            self.method.blockSignals(True)
            self.method.setCurrentIndex(self.method.findData(shown))
            self.method.blockSignals(False)
        if self._refresh_pending:
            self._refresh_pending = False
            self.refresh_timer.start()

    def _show(self, outcome: AuditOutcome) -> None:
        previous = self.table.selected_workflow()
        keep_view = self.outcome is not None and self.outcome.map.method == outcome.map.method
        self.outcome = outcome
        result = outcome.result
        self.table.set_result(result, outcome.library)
        self.map.set_data(outcome.map, keep_view=keep_view)
        self.timeline.set_data(outcome.map, outcome.library, lazy=keep_view)
        self.export_button.setEnabled(True)
        flagged = sum(1 for w in result.workflows if any(v.level in ("medium", "high") for v in w.patterns))
        self.status.setText(f"{len(result.workflows)} workflows, {len(outcome.map.generation_ids)} generations "
                            f"({result.newly_scored} newly scored); {flagged} with a medium or high resemblance. "
                            f"Library {result.library_version}.")
        if previous:
            self.table.select_workflow(previous)
        else:
            self.workflow_info.clear()

    def _on_workflow(self, name: str) -> None:
        self.map.highlight_workflow(name)
        workflow = next((w for w in self.outcome.result.workflows if w.name == name), None) if self.outcome else None
        if workflow is None:
            self.workflow_info.clear()
            return
        self.workflow_info.setHtml(workflow_html(workflow))
        self.tabs.setCurrentIndex(TAB_WORKFLOW)

    def _on_method(self, _index: int) -> None:
        self.project(self.method.currentData())

    def _on_selection(self, generation_ids: list) -> None:
        self.selection.set_selection(self.map.data, self.map.selected)
        if generation_ids:
            self.tabs.setCurrentIndex(TAB_SELECTION)
