"""The Provenance view: choose a dataset file, see its shape and first rows, name its fields by
hand if needed, match it to the ledger, review what was traced, declare the license and
description, write the dataset card, Croissant file and signed statement, and read the card.

Every step that reads files runs on a GeneratorThread (jobs in provenance_tasks.py), one at a
time; the widgets only show what the jobs yield. After a match the view reads the untraced rows'
text and collects the statement (models, screening) for the review on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.provenance import TRACED_EXACT, TRACED_NEAR, UNTRACED, Declared, MatchProgress, MatchReport, RowProblem
from app.core.provenance.statement import StatementProgress
from app.ui.dialogs import show_error
from app.ui.provenance.provenance_pages import (
    AUTOMATIC,
    DATASET_FILTER,
    TAB_CARD,
    TAB_REVIEW,
    TAB_STATEMENT,
    ProvenancePages,
    clip,
    fill,
    plain_label,
    set_card_markdown,
)
from app.ui.provenance.provenance_tasks import (
    REVIEW_ROWS,
    Detected,
    Finished,
    ReviewRows,
    Undetected,
    detect_job,
    export_job,
    match_job,
    review_job,
    statement_job,
    write_job,
)
from app.workers.generator_thread import GeneratorThread

PHASES = {"hashing": "Hashing the file", "reading": "Reading rows and matching exactly",
          "indexing": "Indexing the ledger's responses", "near": "Looking for edited rows"}


class ProvenanceView(ProvenancePages, QWidget):
    """The walk from a dataset file to its provenance files. Emits written(dict) with the paths."""

    written = Signal(object)

    def __init__(self, ledger_path: Path, key_dir: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ledger_path, self._key_dir = Path(ledger_path), key_dir
        self._thread: GeneratorThread | None = None
        self._kind = ""
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
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.progress.setMaximumWidth(260)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.status = plain_label("Choose the dataset file you want to publish.")
        self.status.setObjectName("Muted")
        self.status.setWordWrap(True)
        bar = QHBoxLayout()
        bar.addWidget(title)
        bar.addSpacing(12)
        bar.addWidget(self.progress)
        bar.addWidget(self.cancel_button)
        bar.addStretch(1)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._dataset_tab(), "1 · Dataset")
        self.tabs.addTab(self._review_tab(), "2 · Match and review")
        self.tabs.addTab(self._statement_tab(), "3 · Statement")
        self.tabs.addTab(self._card_tab(), "4 · Card")
        for tab in (TAB_REVIEW, TAB_STATEMENT, TAB_CARD):
            self.tabs.setTabEnabled(tab, False)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.status)
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
        self._start(detect_job(path, fields), "detect", f"Reading {path.name}…")

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
                    "Matching with the ledger…")

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
            self._start(export_job(self.report, path), "export", f"Writing {path.name}…")

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
                    "write", "Writing the provenance files…")

    def cancel(self) -> None:
        """Ask the running job to stop."""
        if self._thread is not None:
            self._thread.cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText("Cancelling…")

    def shutdown(self) -> None:
        """Cancel a running job and wait for its thread (window close)."""
        if self._thread is not None:
            self._thread.cancel()
            self._thread.wait()

    @property
    def busy(self) -> bool:
        """True while a job runs."""
        return self._thread is not None

    # -- jobs ------------------------------------------------------------------------------------

    def _start(self, factory: Any, kind: str, message: str) -> None:
        if self._thread is not None:
            return
        thread = GeneratorThread(factory, f"provenance-{kind}", self)
        thread.yielded.connect(self._on_item)
        thread.errored.connect(self._on_error)
        thread.done.connect(self._on_done)
        self._thread, self._kind = thread, kind
        self.status.setText(message)
        self.cancel_button.setEnabled(True)
        self.write_button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        thread.start()

    def _on_item(self, item: object) -> None:
        if isinstance(item, (MatchProgress, StatementProgress)):
            name = PHASES.get(item.phase, item.phase) if isinstance(item, MatchProgress) else item.stage.capitalize()
            self.status.setText(f"{name}…")
            if item.total:
                self.progress.setRange(0, 1000)
                self.progress.setValue(int(1000 * min(item.done, item.total) / item.total))
            else:
                self.progress.setRange(0, 0)
        elif isinstance(item, Finished):
            self._finished(item.value)

    def _finished(self, value: Any) -> None:
        kind = self._kind
        if kind == "detect" and isinstance(value, Undetected):
            self._show_undetected(value)
        elif kind == "detect":
            self._show_detected(value)
        elif kind == "match":
            self._show_report(value)
        elif kind == "review":
            self._show_review_rows(value)
        elif kind == "statement":
            self._show_statement(value)
        elif kind == "export":
            self.status.setText(f"Wrote {value} untraced rows.")
        elif kind == "write":
            self._show_written(value)

    def _on_error(self, exc: Exception) -> None:
        if self._thread is not None and self._thread.cancel_token.cancelled:
            return  # the job stopped because it was asked to
        if self._kind == "detect":
            self.detected = None
            self.shape_label.setText(str(exc))
            self.preview.setRowCount(0)
        show_error(self, "Provenance", str(exc))

    def _on_done(self) -> None:
        thread, self._thread = self._thread, None
        kind = self._kind
        if thread is not None:
            thread.wait()
            thread.deleteLater()
        self.cancel_button.setEnabled(False)
        self.write_button.setEnabled(self.report is not None)
        self.progress.setVisible(False)
        if thread is not None and thread.cancel_token.cancelled:
            self.status.setText("Cancelled." if kind != "match" else "Matching cancelled; nothing was reported.")
            return
        follow = {"match": self._after_match, "review": self._after_review}.get(kind)
        if follow is not None and self.report is not None:
            follow()

    def _after_match(self) -> None:
        assert self.report is not None
        self._start(review_job(self.report), "review", "Reading the untraced rows…")

    def _after_review(self) -> None:
        assert self.report is not None
        self._start(statement_job(self.report, self._ledger_path, self.screen_check.isChecked()), "statement",
                    "Collecting models and screening for the review…")

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
