"""The Screen view: choose any dataset file and screen it without adding it to the ledger. The
report (pattern levels, reasons, look-alikes, example rows; who wrote the responses, with the style
model's held-out accuracy) on the left, the file's prompts as a layer on the audit map on the
right; flagged rows export to JSON Lines or CSV. The style model learns from the ledger (one
button) or from the chosen file, labelled by the field named beside it (as `stillroom screen train
FILE --label-field FIELD`).

Jobs (screen_tasks.py) run on the view's JobRunner; the widgets only show what they return.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.core.audit.embeddings import Encoder
from app.core.audit.patterns import PatternLibrary
from app.core.audit.projection import ProjectionStore
from app.core.outfiles import replace_file
from app.core.progress import Progress
from app.core.safetext import escape
from app.core.screen.attribution import StyleModel
from app.core.screen.report import rows_text, to_html
from app.ui.audit.audit_tasks import LazyModels
from app.ui.audit.map_panel import MapPanel
from app.ui.dialogs import show_error
from app.ui.progress_strip import ProgressStrip
from app.ui.screen.screen_tasks import ScreenOutcome, screen_job, train_file_job, train_ledger_job
from app.ui.views import View
from app.workers.job_runner import JobRunner

DATASET_FILTER = "Datasets (*.jsonl *.json *.csv *.tsv *.parquet);;All files (*)"
STAGES = {"starting": "Loading the encoder", "exemplars": "Embedding the library", "reading": "Screening rows",
          "judging": "Judging the prompts", "map": "Drawing the map", "placing": "Placing the rows",
          "training": "Training the style model"}


def describe(item: Progress) -> str:
    """The status line for a stage."""
    text = STAGES.get(item.stage, item.stage.capitalize())
    return f"{text}… {item.message}".strip()


class ScreenView(View, QWidget):
    """Screen a dataset file. Emits screened(ScreenOutcome) when a screen is shown, and
    trained(StyleModel) when a style model has been trained and saved."""

    key, nav_title = "screen", "Screen"
    screened = Signal(object)
    trained = Signal(object)

    def __init__(self, ledger_path: Path, encoder: Encoder | None = None, library: PatternLibrary | None = None,
                 model_path: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ledger_path, self._model_path = Path(ledger_path), model_path
        self.models = LazyModels(encoder, library)
        self.store = ProjectionStore(self._ledger_path.parent)
        self.jobs = JobRunner("screen", self)
        self.outcome: ScreenOutcome | None = None
        self._build()

    def _build(self) -> None:
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("A dataset file: JSON Lines, JSON, CSV/TSV or Parquet")
        choose = QPushButton("Choose…")
        choose.clicked.connect(self.choose_dialog)
        self.screen_button = QPushButton("Screen")
        self.screen_button.clicked.connect(lambda: self.screen(self.path_edit.text()))
        self.train_button = QPushButton("Learn styles from the ledger")
        self.train_button.setToolTip("Train the style model on the ledger's generations, grouped by model family")
        self.train_button.clicked.connect(self.train_from_ledger)
        self.label_edit = QLineEdit("model")
        self.label_edit.setMaximumWidth(120)
        self.label_edit.setToolTip("The field of the file that names who wrote each response")
        self.train_file_button = QPushButton("Learn styles from this file")
        self.train_file_button.setToolTip("Train the style model on the chosen file's responses, labelled by the "
                                          "field on the left")
        self.train_file_button.clicked.connect(lambda: self.train_from_file(self.path_edit.text(),
                                                                            self.label_edit.text()))
        self.export_button = QPushButton("Export flagged rows…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.export_dialog)
        bar = QHBoxLayout()
        for widget in (QLabel("File:"), self.path_edit, choose, self.screen_button, self.train_button,
                       QLabel("Label field:"), self.label_edit, self.train_file_button, self.export_button):
            bar.addWidget(widget, 1 if widget is self.path_edit else 0)
        self.strip = ProgressStrip(self.jobs, describe)
        self.attribution_label = QLabel("Choose a file to screen.")
        self.attribution_label.setTextFormat(Qt.TextFormat.PlainText)
        self.attribution_label.setWordWrap(True)
        self.report = QTextBrowser()
        self.report.setOpenLinks(False)
        self.map = MapPanel()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.report)
        self.splitter.addWidget(self.map)
        self.splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.strip)
        layout.addWidget(self.attribution_label)
        layout.addWidget(self.splitter, 1)

    # -- actions ---------------------------------------------------------------------------------

    def choose_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a dataset to screen", str(Path.home()), DATASET_FILTER)
        if path:
            self.screen(path)

    def screen(self, path: str | Path) -> None:
        """Screen `path` on a worker; the report and the map follow."""
        if self.jobs.busy or not str(path).strip():
            return
        path = Path(str(path).strip())
        self.path_edit.setText(str(path))
        self.export_button.setEnabled(False)
        factory = screen_job(path, self._ledger_path, self.models.encoder, self.models.library, self.store,
                             self._model_path)
        self.jobs.run(factory, "screen").success(self._show).failure(
            lambda exc: self._failed("The file could not be screened", exc))

    def train_from_ledger(self) -> None:
        """Train the style model from the ledger's generations (worker thread)."""
        if self.jobs.busy:
            return
        self.jobs.run(train_ledger_job(self._ledger_path, self._model_path), "train").success(self._trained).failure(
            lambda exc: self._failed("The style model could not be trained", exc))

    def train_from_file(self, path: str | Path, label_field: str) -> None:
        """Train the style model from a labelled file (worker thread): each row's response,
        labelled by `label_field`."""
        if self.jobs.busy or not str(path).strip() or not label_field.strip():
            return
        path = Path(str(path).strip())
        self.path_edit.setText(str(path))
        self.jobs.run(train_file_job(path, label_field.strip(), self._ledger_path, self._model_path), "train").success(
            self._trained).failure(lambda exc: self._failed("The style model could not be trained", exc))

    def export_dialog(self) -> None:
        if self.outcome is None:
            return
        default = Path(self.outcome.result.file_name).with_suffix(".flagged.jsonl").name
        path, _ = QFileDialog.getSaveFileName(self, "Export flagged rows", str(Path.home() / default),
                                              "JSON Lines (*.jsonl);;CSV (*.csv)")
        if path:
            self.export_flagged(Path(path))

    def export_flagged(self, path: Path) -> int:
        """Write the rows whose top pattern score is a hit (JSON Lines, or CSV for a .csv path);
        returns how many."""
        assert self.outcome is not None
        fmt = "csv" if path.suffix.lower() == ".csv" else "jsonl"
        text = rows_text(self.outcome.result, fmt, flagged_only=True)
        with replace_file(path) as handle:
            handle.write(text)
        count = len(text.splitlines()) - (1 if fmt == "csv" else 0)
        self.strip.label.setText(f"Wrote {count} flagged rows to {escape(path.name)}.")
        return count

    # -- job results (UI thread) -----------------------------------------------------------------

    def _show(self, outcome: ScreenOutcome | None) -> None:
        if outcome is None:
            return
        self.outcome = outcome
        result = outcome.result
        self.report.setHtml(to_html(result))
        self.map.set_data(outcome.map)
        attribution = result.attribution
        line = f"Responses: {escape(attribution.verdict)} ({escape(attribution.reason)})"
        self.attribution_label.setText(line)
        self.export_button.setEnabled(True)
        self.strip.label.setText(f"Screened {result.screened:,} rows of {escape(result.file_name)}.")
        self.screened.emit(outcome)

    def _trained(self, model: StyleModel | None) -> None:
        if model is None:
            return
        metrics = model.likelihood.metrics if model.likelihood is not None else model.metrics
        aucs = ", ".join(f"{escape(m.family)} AUC {m.auc:.2f}" for m in metrics)
        how = ("by likelihood under each family's own model" if model.method == "likelihood"
               else f"by style ({escape(model.likelihood_note)})" if model.likelihood_note else "by style")
        self.attribution_label.setText(f"Trained on {escape(model.training_set.name)}; attributes {how}: held-out "
                                       f"accuracy {model.heldout_accuracy * 100:.1f}% ({aucs}).")
        self.trained.emit(model)

    def _failed(self, title: str, exc: Exception) -> None:
        self.strip.label.setText(escape(str(exc)))
        show_error(self, title, str(exc))

    def shutdown(self) -> None:
        """Cancel a running job and wait for its thread (window close)."""
        self.jobs.shutdown()
