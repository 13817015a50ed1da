"""The Batch view: stored jobs, the New job form, Start / Pause / Resume / Cancel, progress, output rows.

Runs happen on the model thread (ModelService.start_batch / run_batch, the same run_batch as
`stillroom batch run`); this view only receives each run's created, progress and done callbacks
on the UI thread, and pauses or cancels through the run's BatchControl (thread-safe). The job
list is read through the DbExecutor.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.batch.jobs import BatchJob, done_keys, list_jobs
from app.core.batch.run import BatchControl, BatchFinished, BatchProgress
from app.core.batch.spec import BatchSpec, BatchSpecError, OutputExistsError, OutputOutsideError, check_output_free
from app.ui.batch.batch_form import BatchForm
from app.ui.dialogs import ask_confirmation, show_error
from app.ui.views import View
from app.workers.db_executor import DbExecutor
from app.workers.model_service import ModelService

JOB_COLUMNS = ("#", "Name", "Workflow", "Status", "Done")
JOBS_MIN_WIDTH = 300
OUTPUT_COLUMNS = ("Ledger id", "Prompt", "Response")
MAX_OUTPUT_ROWS = 200
JOB_ID_ROLE = Qt.ItemDataRole.UserRole
RESUMABLE = ("created", "paused", "cancelled", "failed", "running")


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600} h {seconds % 3600 // 60} min"


class BatchView(View, QWidget):
    """Job list + form + run controls (UI thread)."""

    key, nav_title = "batch", "Batch"

    def __init__(self, service: ModelService, db: DbExecutor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._service, self._db = service, db
        self.jobs: list[BatchJob] = []
        self.jobs_done: dict[int, int] = {}
        self.control: BatchControl | None = None
        self.running_job: int | None = None
        self.last_finished: BatchFinished | None = None
        self._build()
        service.model_loaded.connect(lambda _loaded: self._update_buttons())
        service.model_unloaded.connect(self._update_buttons)

    def _build(self) -> None:
        title = QLabel("Batch")
        title.setObjectName("ViewTitle")
        self.jobs_table = _table(JOB_COLUMNS)
        self.jobs_table.itemSelectionChanged.connect(self._update_buttons)
        header = self.jobs_table.horizontalHeader()
        for column in range(len(JOB_COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.jobs_table.setColumnHidden(2, True)  # the workflow is in the tooltip; the list stays narrow
        self.jobs_table.setMinimumWidth(JOBS_MIN_WIDTH)
        jobs_box = QGroupBox("Jobs")
        QVBoxLayout(jobs_box).addWidget(self.jobs_table)

        self.form = BatchForm()
        self.form.changed.connect(self._update_buttons)
        form_box = QGroupBox("New job")
        form_layout = QHBoxLayout(form_box)
        form_layout.addWidget(self.form, 3)
        form_layout.addWidget(self.form.sampling, 2)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(form_box)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)

        self.start_button = QPushButton("Start")
        self.start_button.setObjectName("PrimaryButton")
        self.start_button.clicked.connect(lambda: self.start())
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self.pause)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the selected job where its committed rows stop")
        self.resume_button.clicked.connect(self.resume)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)  # until a job starts: no made-up total
        self.rate_label = QLabel("")
        self.rate_label.setObjectName("Muted")
        self.model_label = QLabel("")
        self.model_label.setObjectName("Muted")
        self.model_label.setToolTip("Batch jobs run on the model loaded now (switch it in Chat or Models); "
                                    "every row records its model's sha256")
        controls = QHBoxLayout()
        controls.addWidget(self.model_label)
        for button in (self.start_button, self.pause_button, self.resume_button, self.cancel_button):
            controls.addWidget(button)
        controls.addWidget(self.progress, 1)
        controls.addWidget(self.rate_label)

        self.output_table = _table(OUTPUT_COLUMNS)
        header = self.output_table.horizontalHeader()
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        output_box = QGroupBox("Latest output rows")
        QVBoxLayout(output_box).addWidget(self.output_table)

        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(jobs_box)
        top.addWidget(scroll)
        top.setStretchFactor(0, 2)
        top.setStretchFactor(1, 5)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(top)
        self.splitter.addWidget(output_box)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 12)
        layout.addWidget(title)
        layout.addWidget(self.splitter, 1)
        layout.addLayout(controls)
        self._update_buttons()

    # -- public ----------------------------------------------------------------------------------

    def on_ledger_ready(self) -> None:
        """Read the stored jobs."""
        self.reload()

    def reload(self) -> None:
        """Read the job list again (database thread)."""
        self._db.submit(lambda db: [(job, len(done_keys(db, job.id))) for job in list_jobs(db)], self._show_jobs)

    def start(self, allow_outside: bool = False, replace: bool = False) -> None:
        """Validate the form and run the new job on the model thread. An output outside the home
        folder, or one that exists already, is asked about first (unless picked with Choose…);
        the job starts when the user confirms."""
        try:
            spec = self.form.spec(allow_outside)
            if not (replace or self.form.output_confirmed(spec.output)):
                check_output_free(spec.output)
        except OutputOutsideError as exc:
            ask_confirmation(self, "Write the batch output outside your home folder?",
                             f"The output {exc.path} is not inside {exc.base}. Write it there?", "Write there",
                             lambda: self.start(allow_outside=True, replace=replace))
            return
        except OutputExistsError as exc:
            ask_confirmation(self, "Replace the existing file?",
                             f"{exc.path} exists already; the batch output would replace it.", "Replace",
                             lambda: self.start(allow_outside=True, replace=True))
            return
        except BatchSpecError as exc:
            self.form.error_label.setText(str(exc))
            show_error(self, "The batch job cannot start", str(exc))
            return
        self._run_new(spec)

    def _run_new(self, spec: BatchSpec) -> None:
        self.output_table.setRowCount(0)
        self._begin(spec.total)
        self.control = self._service.start_batch(spec, self._on_created, self._on_progress, self._on_finished)

    def resume(self) -> None:
        """Resume the selected job (or the last one run) where its committed rows stop."""
        job = self.selected_job()
        job_id = job.id if job else self.running_job
        if job_id is None or self.control is not None:
            return
        self.running_job = job_id
        self._begin(job.total if job else self.progress.maximum())
        self.control = self._service.run_batch(job_id, self._on_progress, self._on_finished)

    def pause(self) -> None:
        """Stop after the generation in progress; Resume continues."""
        if self.control is not None:
            self.control.pause()
            self.rate_label.setText("Pausing…")

    def cancel(self) -> None:
        """Stop the running generation now (logged as cancelled)."""
        if self.control is not None:
            self.control.cancel.cancel()
            self.rate_label.setText("Cancelling…")

    def selected_job(self) -> BatchJob | None:
        """The job selected in the list, if any."""
        row = self.jobs_table.currentRow()
        return self.jobs[row] if 0 <= row < len(self.jobs) else None

    def shutdown(self) -> None:
        """Cancel a running batch (UI thread, when the window closes); it stays resumable."""
        if self.control is not None:
            self.control.cancel.cancel()

    # -- a run's callbacks (UI thread) -----------------------------------------------------------

    def _on_created(self, job_id: int) -> None:
        self.running_job = job_id
        self.reload()

    def _on_progress(self, progress: BatchProgress) -> None:
        self.progress.setTextVisible(True)
        self.progress.setMaximum(progress.total)
        self.progress.setValue(progress.done)
        rate = f"{progress.tokens_per_s:.1f} tok/s" if progress.tokens_per_s else "– tok/s"
        self.rate_label.setText(f"{progress.done}/{progress.total} · {rate} · ETA {_eta(progress.eta_s)}")
        row = 0
        self.output_table.insertRow(row)
        for column, value in enumerate((str(progress.last_ledger_id or ""), progress.last_prompt,
                                        progress.last_response)):
            self.output_table.setItem(row, column, QTableWidgetItem(value.replace("\n", " ⏎ ")))
        if self.output_table.rowCount() > MAX_OUTPUT_ROWS:
            self.output_table.removeRow(MAX_OUTPUT_ROWS)

    def _on_finished(self, finished: BatchFinished) -> None:
        self.control = None
        self.last_finished = finished
        if finished.total:
            self.progress.setMaximum(finished.total)
            self.progress.setValue(finished.done)
        text = f"{finished.status.capitalize()}: {finished.done}/{finished.total}"
        self.rate_label.setText(text + (f" ({finished.error})" if finished.error else ""))
        if finished.status == "failed":
            show_error(self, "The batch run failed", finished.error or "unknown error")
        self.reload()
        self._update_buttons()

    # -- internals -------------------------------------------------------------------------------

    def _begin(self, total: int) -> None:
        self.last_finished = None
        self.progress.setTextVisible(True)
        self.progress.setMaximum(max(1, total))
        self.progress.setValue(0)
        self.rate_label.setText("Waiting for the model…")
        self.control = None
        self._update_buttons(running=True)

    def _show_jobs(self, jobs_done: list[tuple[BatchJob, int]]) -> None:
        selected = self.selected_job()
        self.jobs = [job for job, _ in jobs_done]
        self.jobs_done = {job.id: done for job, done in jobs_done}
        jobs = self.jobs
        self.jobs_table.setRowCount(len(jobs))
        for row, job in enumerate(jobs):
            done = f"{self.jobs_done[job.id]}/{job.total}"
            for column, value in enumerate((str(job.id), job.name, job.workflow, job.status, done)):
                item = QTableWidgetItem(value)
                item.setData(JOB_ID_ROLE, job.id)
                item.setToolTip(f"{job.name} · workflow {job.workflow} · {job.output_path}")
                self.jobs_table.setItem(row, column, item)
            if selected is not None and job.id == selected.id:
                self.jobs_table.selectRow(row)
        self._update_buttons()

    def _update_buttons(self, running: bool | None = None) -> None:
        busy = (self.control is not None) if running is None else running
        model = self._service.loaded
        loaded = model is not None
        self.model_label.setText(f"Model: {model.info.name} ({model.sha256[:12]})" if model else "Model: none loaded")
        job = self.selected_job()
        self.start_button.setEnabled(not busy and loaded)
        self.pause_button.setEnabled(busy)
        self.cancel_button.setEnabled(busy)
        self.resume_button.setEnabled(not busy and loaded and (
            (job is not None and job.status in RESUMABLE) or (job is None and self.running_job is not None
                                                              and self.last_finished is not None
                                                              and self.last_finished.status != "done")))


def _table(columns: tuple[str, ...]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.setShowGrid(False)
    table.setWordWrap(False)
    return table
