"""The Provenance view: choose a dataset file, see its shape and first rows, name its fields by
hand if needed, match it to the ledger, review what was traced, declare the license and
description, write the dataset card, Croissant file and signed statement, and read the card.

Every step that reads files runs on the view's JobRunner (jobs in provenance_tasks.py), one at a
time, each with its own callbacks; the widgets only show what the jobs yield and return. After a match the view reads the untraced rows'
text and collects the statement (models, screening) for the review on its own.
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.progress import Progress
from app.core.provenance import TRACED_EXACT, TRACED_NEAR, UNTRACED, Declared, MatchReport, RowProblem
from app.ui.dialogs import show_error
from app.ui.progress_strip import ProgressStrip
from app.ui.provenance.provenance_pages import (
    AUTOMATIC,
    DATASET_FILTER,
    TAB_CARD,
    TAB_REVIEW,
    TAB_STATEMENT,
    ProvenancePages,
    clip,
    fill,
    set_card_markdown,
)
from app.ui.provenance.provenance_tasks import (
    REVIEW_ROWS,
    Detected,
    Job,
    ReviewRows,
    Undetected,
    detect_job,
    export_job,
    match_job,
    review_job,
    statement_job,
    write_job,
)
from app.ui.views import View
from app.workers.job_runner import JobRunner

PHASES = {"hashing": "Hashing the file", "reading": "Reading rows and matching exactly",
          "indexing": "Indexing the ledger's responses", "near": "Looking for edited rows"}
PROGRESS_STEPS = 1000


def describe(item: Progress) -> str:
    """The status line for a match's phase or a statement's stage."""
    return f"{PHASES.get(item.stage, item.stage.capitalize())}…"


class ProvenanceView(View, ProvenancePages, QWidget):
    """The walk from a dataset file to its provenance files. Emits written(dict) with the paths."""

    key, nav_title = "provenance", "Provenance"
    written = Signal(object)

    def __init__(self, ledger_path: Path, key_dir: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ledger_path, self._key_dir = Path(ledger_path), key_dir
        self.jobs = JobRunner("provenance", self)
        self.detected: Detected | None = None
        self._dataset_path: Path | None = None
        self.report: MatchReport | None = None
        self.predicate: dict[str, Any] | None = None
        self.paths: dict[str, Path] | None = None
        self._build()

    # -- construction ----------------------------------------------------------------------------

    def _build(self) -> None:
        title = QLabel("Provenance")
        title.setObjectName("ViewTitle")
        self.strip = ProgressStrip(self.jobs, describe, PROGRESS_STEPS, "Choose the dataset file you want to publish.")
        self.status = self.strip.label
        self.status.setWordWrap(True)
        bar = QHBoxLayout()
        bar.addWidget(title)
        bar.addSpacing(12)
        bar.addWidget(self.strip, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._dataset_tab(), "1 · Dataset")
        self.tabs.addTab(self._review_tab(), "2 · Match and review")
        self.tabs.addTab(self._statement_tab(), "3 · Statement")
        self.tabs.addTab(self._card_tab(), "4 · Card")
        for tab in (TAB_REVIEW, TAB_STATEMENT, TAB_CARD):
            self.tabs.setTabEnabled(tab, False)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.tabs, 1)

    # -- actions ---------------------------------------------------------------------------------

    def choose_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose the dataset", str(Path.home()), DATASET_FILTER)
        if path:
            self.choose_dataset(path)

    def choose_dataset(self, path: str | Path, fields: dict[str, str] | None = None) -> None:
        """Detect the file's shape and show its first rows (on a worker)."""
        if self.busy:
            return
        path = Path(str(path).strip())
        self._dataset_path = path
        self.detected = None
        self.path_edit.setText(str(path))
        self.report = self.predicate = self.paths = None
        for tab in (TAB_REVIEW, TAB_STATEMENT, TAB_CARD):
            self.tabs.setTabEnabled(tab, False)
        self.match_button.setEnabled(False)
        self._start(detect_job(path, fields), "detect", f"Reading {path.name}…", self._show_detection,
                    self._detection_failed)

    def apply_fields(self) -> None:
        """Read the file again with the fields chosen in the boxes."""
        fields = {role: box.currentText() for role, box in self.field_boxes.items()
                  if box.currentIndex() > 0}
        if self._dataset_path is not None:
            self.choose_dataset(self._dataset_path, fields)

    def start_match(self) -> None:
        """Match the detected dataset with the ledger (on a worker), then prepare the review."""
        if self.detected is None or self.busy:
            return
        self.tabs.setTabEnabled(TAB_REVIEW, True)
        self.tabs.setCurrentIndex(TAB_REVIEW)
        self.next_button.setEnabled(False)
        self.export_button.setEnabled(False)
        self._start(match_job(self.detected.path, self._ledger_path, self.detected.shape), "match",
                    "Matching with the ledger…", self._matched)

    def export_dialog(self) -> None:
        if self.report is None:
            return
        default = Path(self.report.dataset_path).with_suffix(".untraced.jsonl")
        path, _ = QFileDialog.getSaveFileName(self, "Export the untraced rows", str(default), "JSON Lines (*.jsonl)")
        if path:
            self.export_untraced(Path(path))

    def export_untraced(self, path: Path) -> None:
        """Write the untraced rows to `path` as JSON Lines (on a worker)."""
        if self.report is not None and not self.busy:
            self._start(export_job(self.report, path), "export", f"Writing {path.name}…",
                        lambda count: self.status.setText(f"Wrote {count} untraced rows."))

    def out_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose the output folder", self.out_edit.text())
        if path:
            self.out_edit.setText(path)

    def declared(self) -> Declared:
        """What the publisher entered; empty fields stay undeclared."""
        def text(value: str) -> str | None:
            return value.strip() or None
        return Declared(license=text(self.license_box.currentText()), description=text(self.description_edit.toPlainText()),
                        intended_use=text(self.intended_edit.toPlainText()), name=text(self.name_edit.text()))

    def write(self) -> None:
        """Write the card, Croissant file and signed statement to the output folder (on a worker)."""
        if self.report is None or self.busy:
            return
        out = self.out_edit.text().strip()
        if not out:
            show_error(self, "No output folder", "Choose the folder the three files are written to.")
            return
        reason = self.report.nothing_traced()
        if reason is not None and not self.allow_untraced_check.isChecked():
            show_error(self, "Nothing traced", f"{reason}. A signed statement would vouch for nothing, so it "
                       "was not written. Tick \"Sign it anyway\" to sign it on purpose.")
            return
        self._start(write_job(self.report, self._ledger_path, self.declared(), Path(out), self._key_dir,
                              self.screen_check.isChecked(), self.force_check.isChecked(),
                              self.allow_untraced_check.isChecked()),
                    "write", "Writing the provenance files…", self._show_written)

    def cancel(self) -> None:
        """Ask the running job to stop."""
        self.jobs.cancel()

    def shutdown(self) -> None:
        """Cancel a running job and wait for its thread (window close)."""
        self.jobs.shutdown()

    @property
    def busy(self) -> bool:
        """True while a job runs."""
        return self.jobs.busy

    # -- jobs ------------------------------------------------------------------------------------

    def _start(self, factory: Job, kind: str, message: str, shown: Callable[[Any], object],
               failed: Callable[[Exception], object] | None = None) -> None:
        """Run one job (nothing while another runs): `shown` gets its result, `failed` its error
        before the error dialog."""
        if self.jobs.busy:
            return
        self.write_button.setEnabled(False)
        run = self.jobs.run(factory, kind)
        self.status.setText(message)
        run.success(shown)
        if failed is not None:
            run.failure(failed)
        run.failure(lambda exc: show_error(self, "Provenance", str(exc)))
        run.cancelled(lambda: self.status.setText("Matching cancelled; nothing was reported." if kind == "match"
                                                  else "Cancelled."))
        run.finally_(lambda: self.write_button.setEnabled(self.report is not None and not self.jobs.busy))

    def _detection_failed(self, exc: Exception) -> None:
        self.detected = None
        self.shape_label.setText(str(exc))
        self.preview.setRowCount(0)

    def _matched(self, report: MatchReport) -> None:
        self._show_report(report)
        self._start(review_job(report), "review", "Reading the untraced rows…", self._reviewed)

    def _reviewed(self, review: ReviewRows) -> None:
        self._show_review_rows(review)
        assert self.report is not None
        self._start(statement_job(self.report, self._ledger_path, self.screen_check.isChecked()), "statement",
                    "Collecting models and screening for the review…", self._show_statement)

    # -- showing results -------------------------------------------------------------------------

    def _set_columns(self, columns: tuple[str, ...], fields: dict[str, str]) -> None:
        for role, box in self.field_boxes.items():
            box.blockSignals(True)
            box.clear()
            box.addItem(AUTOMATIC)
            box.addItems(list(columns))
            if fields.get(role):
                box.setCurrentText(fields[role])
            box.blockSignals(False)
        self.apply_fields_button.setEnabled(bool(columns))

    def _show_detection(self, found: Detected | Undetected) -> None:
        if isinstance(found, Undetected):
            self._show_undetected(found)
        else:
            self._show_detected(found)

    def _show_undetected(self, undetected: Undetected) -> None:
        self._set_columns(undetected.columns, {})
        self.shape_label.setText(undetected.reason)
        self.preview.setRowCount(0)
        self.status.setText(f"{undetected.path.name}: name the prompt and response fields, then use them.")

    def _show_detected(self, detected: Detected) -> None:
        self.detected = detected
        shape = detected.shape
        self.shape_label.setText(f"Detected: {shape.describe()}")
        self._set_columns(shape.columns, shape.fields)
        rows = []
        for item in detected.preview:
            if isinstance(item, RowProblem):
                rows.append([item.index, "malformed", item.reason])
            else:
                rows.append([item.index, clip(item.prompt), clip(item.response)])
        fill(self.preview, rows)
        self.match_button.setEnabled(True)
        self.status.setText(f"{detected.path.name}: check the shape and the first rows, then match.")

    def _show_report(self, report: MatchReport) -> None:
        self.report = report
        counts = report.counts
        parts = [f"{report.rows:,} rows"]
        for status, label in ((TRACED_EXACT, "traced exactly"), (TRACED_NEAR, "traced after edits"),
                              (UNTRACED, "untraced")):
            parts.append(f"{label}: {counts.get(status, 0):,} ({report.share(status):.1%})")
        if report.malformed:
            parts.append(f"malformed: {report.malformed:,}")
        self.shares_label.setText(" · ".join(parts) + f" · {len(report.traced_ids):,} generations")
        self.export_button.setEnabled(bool(report.untraced))
        reason = report.nothing_traced()
        self.untraced_warning.setText(f"Warning: {reason}. Stillroom will not sign a statement that traces "
                                      "nothing unless you say so below." if reason else "")
        self.untraced_warning.setVisible(reason is not None)
        self.allow_untraced_check.setChecked(False)
        self.allow_untraced_check.setVisible(reason is not None)
        if reason is not None:
            self.shares_label.setText(self.shares_label.text() + f"\nWarning: {reason}.")
        self.tabs.setTabEnabled(TAB_STATEMENT, True)
        if not self.out_edit.text():
            self.out_edit.setText(str(Path(report.dataset_path).parent))
        if not self.name_edit.text():
            self.name_edit.setText(Path(report.dataset_name).stem)

    def _show_review_rows(self, review: ReviewRows) -> None:
        assert self.report is not None
        report = self.report
        blank = ("", "")
        fill(self.untraced_table, [[i, clip(review.texts.get(i, blank)[0]), clip(review.texts.get(i, blank)[1])]
                                    for i in report.untraced[:REVIEW_ROWS]])
        fill(self.near_table, [[i, gid, f"{score:.2f}", clip(review.texts.get(i, blank)[1])]
                                for i, gid, score in report.near[:REVIEW_ROWS]])
        self.next_button.setEnabled(True)

    def _show_statement(self, predicate: dict[str, Any]) -> None:
        self.predicate = predicate
        fill(self.models_table, [[m.get("name"), m.get("quantization"), m.get("generations"), str(m.get("sha256"))[:16]]
                                  for m in predicate.get("models", [])])
        self.screening_label.setText(screening_text(predicate.get("screening", {})))
        self.status.setText("Review what was traced, then declare the license and description and write.")

    def _show_written(self, paths: dict[str, Path]) -> None:
        self.paths = paths
        self.tabs.setTabEnabled(TAB_CARD, True)
        self.tabs.setCurrentIndex(TAB_CARD)
        self.paths_label.setText("Written: " + ", ".join(str(p) for p in paths.values()))
        set_card_markdown(self.card, Path(paths["card"]).read_text(encoding="utf-8").split("\n---\n", 1)[-1])
        self.status.setText(f"Wrote the dataset card, Croissant file and signed statement to {paths['card'].parent}.")
        self.written.emit(paths)


def screening_text(screening: dict[str, Any]) -> str:
    """One paragraph about the audit's screening of the traced workflows."""
    if screening.get("status") != "run":
        return f"Screening: not run ({screening.get('reason', 'unknown')})."
    parts = []
    for workflow in screening.get("workflows", []):
        flagged = [f"{r['name']} ({r['level']})" for r in workflow.get("resemblances", [])]
        parts.append(f"{workflow['name']}: " + (", ".join(flagged) if flagged else "no resemblance"))
    version = screening.get("library_version", "?")
    return f"Screening (pattern library {version}): " + ("; ".join(parts) if parts else "no workflows")
