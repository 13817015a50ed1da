"""The Lab view: the distillation lab in three steps (teacher, student, compare), each explained on
screen, each run on the view's JobRunner with a progress strip (Cancel included), and a lesson report
to export.

The teacher's generations run on the model thread through ServiceGenerate (ModelService.serve,
the logged path), so they queue behind chat turns and batch runs like any other generation. The
student and compare steps run on the same runner (lab_jobs); the compare step opens its own ledger
connection there. Widgets are only touched on the UI thread, from the runs' callbacks.
Emits (UI thread) step_finished(step) after a step that was not cancelled.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.lab import explain
from app.core.lab.compare import CompareResult
from app.core.lab.lesson import write_lesson
from app.core.lab.state import DEFAULT_SAMPLES, DEFAULT_SEED, LabConfig, LabState, new_run_id
from app.core.lab.student import StudentResult
from app.core.lab.styles import DEFAULT_STYLE, STYLE_TITLES, STYLES
from app.core.lab.tasks import LabError, TaskSet, load_tasks
from app.core.lab.teacher import TeacherProgress, TeacherResult
from app.core.progress import Progress
from app.ui.dialogs import show_error
from app.ui.lab.lab_jobs import LabModels, compare_job, student_job, teacher_job
from app.ui.lab.lab_panels import AnswersTable, AuditLevels, CurvePanel
from app.ui.lab.who_wrote_panel import WhoWrotePanel
from app.ui.progress_strip import ProgressStrip
from app.ui.views import View
from app.workers.db_executor import DbExecutor
from app.workers.job_runner import JobRunner
from app.workers.lab_generate import TEACHER_TITLE, ServiceGenerate
from app.workers.model_service import ModelService

STEPS = ("teacher", "student", "compare")
STEP_TITLES = {"teacher": "1. Teacher", "student": "2. Student", "compare": "3. Compare"}
STEP_TEXT = {"teacher": explain.STEP_TEACHER, "student": explain.STEP_STUDENT, "compare": explain.STEP_COMPARE}


def _wrapped(text: str, name: str = "", rich: bool = False) -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if name:
        label.setObjectName(name)
    return label


class LabView(View, QWidget):
    """Settings, the three steps (tabs), run controls with progress and Cancel, Export lesson (UI thread)."""

    key, nav_title = "lab", "Lab"
    step_finished = Signal(str)

    def __init__(self, service: ModelService, db: DbExecutor, ledger_path: Path,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._service, self._db, self._path = service, db, ledger_path
        self.tasks: TaskSet = load_tasks()
        self.models = LabModels()
        self._generate = ServiceGenerate(service)
        self.state: LabState | None = None
        self.running: str | None = None
        self.jobs = JobRunner("lab", self)
        self._run_all = False
        self.last_error = ""
        self._build()
        service.model_loaded.connect(lambda _loaded: self._update_buttons())
        service.model_unloaded.connect(self._update_buttons)

    # -- construction ----------------------------------------------------------------------------

    def _build(self) -> None:
        title = QLabel("Lab")
        title.setObjectName("ViewTitle")
        about = QWidget()
        about_layout = QVBoxLayout(about)
        for heading, text in (("What distillation is", explain.WHAT_IS_DISTILLATION),
                              ("Why labs flag it", explain.WHY_FLAGGED),
                              ("What is legitimate", explain.WHAT_IS_LEGITIMATE)):
            about_layout.addWidget(_wrapped(f"<b>{heading}</b><br>{html.escape(text)}", rich=True))
        sources = "".join(f"<li>{html.escape(source.citation())}</li>"
                          for source in explain.sources_for("what", "why", "legitimate", "logprobs"))
        about_layout.addWidget(_wrapped(f"<b>Sources</b><ol>{sources}</ol>", "Muted", rich=True))
        about_layout.addStretch(1)
        self.style_combo = QComboBox()
        for style in STYLES:
            self.style_combo.addItem(STYLE_TITLES[style], style)
        self.style_combo.setCurrentIndex(STYLES.index(DEFAULT_STYLE))
        self.style_combo.currentIndexChanged.connect(self._on_style)
        self.samples_spin = QSpinBox()
        self.samples_spin.setRange(2, self.tasks.max_samples())
        self.samples_spin.setValue(min(DEFAULT_SAMPLES, self.tasks.max_samples()))
        self.samples_spin.setToolTip("Teacher samples per task for the largest student; the curve doubles up to it")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setValue(DEFAULT_SEED)
        self.style_note = _wrapped(explain.STYLE_NOTES[DEFAULT_STYLE], "Muted")
        settings = QHBoxLayout()
        for text, widget in (("Collection style", self.style_combo), ("Samples per task", self.samples_spin),
                             ("Seed", self.seed_spin)):
            settings.addWidget(QLabel(text))
            settings.addWidget(widget)
        self.teacher_label = QLabel(f"Teacher: {TEACHER_TITLE}")
        self.teacher_label.setObjectName("Muted")
        self.teacher_label.setToolTip("The teacher's calls load this bundled model in place of the one loaded "
                                      "(one model at a time); every call's row records its sha256")
        settings.addWidget(self.teacher_label)
        settings.addStretch(1)

        self.tabs = QTabWidget()
        self.tabs.addTab(about, "About")
        self.answers = AnswersTable(self.tasks)
        self.curve = CurvePanel()
        self.summary = _wrapped("")
        self.levels = AuditLevels()
        audit_hint = _wrapped("The Audit view shows these workflows on its map and in its report, with the reasons "
                              "for each level.", "Muted")
        for step, widgets in (("teacher", [self.answers]), ("student", [self.curve]),
                              ("compare", [self.summary, self.levels, audit_hint])):
            page = QWidget()
            layout = QVBoxLayout(page)
            layout.addWidget(_wrapped(STEP_TEXT[step]))
            for widget in widgets:
                layout.addWidget(widget, 1 if widget in (self.answers, self.curve, self.levels) else 0)
            self.tabs.addTab(page, STEP_TITLES[step])
        self.who_wrote = WhoWrotePanel(self._path)
        self.tabs.addTab(self.who_wrote, "Who wrote this?")

        self.step_buttons = {step: QPushButton(text) for step, text in
                             (("teacher", "Run teacher"), ("student", "Train student"), ("compare", "Compare"))}
        for step, button in self.step_buttons.items():
            button.clicked.connect(lambda _checked=False, s=step: self.run_step(s))
        self.all_button = QPushButton("Run all")
        self.all_button.setObjectName("PrimaryButton")
        self.all_button.clicked.connect(self.run_all)
        self.export_button = QPushButton("Export lesson…")
        self.export_button.clicked.connect(self.export_dialog)
        self.strip = ProgressStrip(self.jobs)
        self.status = self.strip.label
        controls = QHBoxLayout()
        controls.addWidget(self.all_button)
        for button in self.step_buttons.values():
            controls.addWidget(button)
        controls.addWidget(self.strip, 1)
        controls.addWidget(self.export_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 12)
        layout.addWidget(title)
        layout.addLayout(settings)
        layout.addWidget(self.style_note)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(controls)
        self._update_buttons()

    # -- public ----------------------------------------------------------------------------------

    def config(self) -> LabConfig:
        """The settings in the form."""
        return LabConfig(self.style_combo.currentData(), self.samples_spin.value(), self.seed_spin.value())

    def run_all(self) -> None:
        """Run the teacher, then the student, then the compare step."""
        self._run_all = True
        self.run_step("teacher")

    def run_step(self, step: str) -> None:
        """Start one step on a worker thread (the teacher starts a new lab run)."""
        if self.running is not None:
            return
        if step == "teacher":
            try:
                config = self.config().check(self.tasks)
            except LabError as exc:
                show_error(self, "The lab cannot start", str(exc))
                self._run_all = False
                return
            if self._service.loaded is None:
                show_error(self, "The lab needs a model", "Load a model in Models first; it is the teacher.")
                self._run_all = False
                return
            self.state = LabState(config, new_run_id(config))
            self.answers.setRowCount(0)
            self.curve.set_points([])
            self.levels.set_result(None)
            self.summary.setText("")
            factory, shown = teacher_job(self._generate, self.tasks, config, self.state.run_id), self._taught
        elif step == "student" and self.state is not None and self.state.teacher is not None:
            self.state.student = None
            self.state.compare = None
            factory, shown = student_job(self.state.teacher, self.tasks, self.models), self._trained
        elif step == "compare" and self.state is not None and self.state.student is not None \
                and self.state.teacher is not None:
            self.state.compare = None
            factory, shown = compare_job(self._path, self.state.teacher, self.state.student, self.models), self._compared
        else:
            return
        self.running = step
        self.last_error = ""
        self.tabs.setCurrentIndex(1 + STEPS.index(step))
        (self.jobs.run(factory, step)
         .progress(self._teacher_progress if step == "teacher" else self._step_progress)
         .success(shown)
         .failure(self._on_error)
         .finally_(self._on_done))
        self.status.setText(f"{STEP_TITLES[step]}: starting…")
        self._update_buttons()

    def cancel(self) -> None:
        """Stop the running step (the teacher's generation in progress is logged as cancelled)."""
        self._run_all = False
        self.jobs.cancel()

    def export(self, path: Path) -> Path:
        """Write the lesson report for the steps done so far (and the plots as SVG next to it)."""
        if self.state is None:
            raise LabError("run the teacher step first: there is nothing to report yet")
        return write_lesson(self.state, self.tasks, path)

    def export_dialog(self) -> None:
        """Ask where to save the lesson report, then write it."""
        path, _ = QFileDialog.getSaveFileName(self, "Export lesson report", "lesson.html", "HTML (*.html)")
        if not path:
            return
        try:
            self.export(Path(path))
        except (LabError, OSError) as exc:
            show_error(self, "The lesson report could not be written", str(exc))
            return
        self.status.setText(f"Lesson report written to {path}")

    def shutdown(self) -> None:
        """Cancel a running step and wait for its thread (window close)."""
        self.jobs.shutdown()
        self.who_wrote.shutdown()

    # -- slots (UI thread) -----------------------------------------------------------------------

    def _teacher_progress(self, item: TeacherProgress) -> None:
        self.answers.add(item.answer)
        self.status.setText(f"teacher {item.done}/{item.total}: "
                            f"{item.answer.item.text[:50]} → {item.answer.label or '(no label)'}")

    def _step_progress(self, item: Progress) -> None:
        """The student's own line, or the compare step's audit stage."""
        self.status.setText(item.message or f"audit: {item.stage} {item.done}/{item.total}")

    def _taught(self, teacher: TeacherResult) -> None:
        assert self.state is not None
        self.state.teacher = teacher
        self.state.timings["teacher"] = teacher.seconds

    def _trained(self, student: StudentResult) -> None:
        assert self.state is not None
        self.state.student = student
        self.state.timings["student"] = student.embed_seconds + student.train_seconds
        self.curve.set_points(student.points)

    def _compared(self, compare: CompareResult) -> None:
        assert self.state is not None
        self.state.compare = compare
        self.levels.set_result(compare)
        self.summary.setText(self._summary_text(self.state))

    def _on_error(self, exc: Exception) -> None:
        self._run_all = False
        self.last_error = str(exc)
        show_error(self, f"The {self.running or 'lab'} step failed", str(exc))

    def _on_done(self) -> None:
        step, self.running = self.running, None
        state = self.state
        finished = state is not None and step is not None and getattr(state, step) is not None
        if not finished:
            self._run_all = False
        if finished:
            self.status.setText(f"{STEP_TITLES[step]} done." + (f" {self._summary_text(state)}"
                                                               if step == "student" else ""))
        elif not self.last_error:
            self.status.setText(f"{STEP_TITLES.get(step or '', 'Step')} cancelled; what the teacher answered "
                                "is kept in the ledger.")
        self._update_buttons()
        if finished and step is not None:
            self.step_finished.emit(step)
            if self._run_all and step != "compare":
                self.run_step(STEPS[STEPS.index(step) + 1])
            else:
                self._run_all = False

    def _on_style(self) -> None:
        self.style_note.setText(explain.STYLE_NOTES[self.style_combo.currentData()])

    # -- internals -------------------------------------------------------------------------------

    def _summary_text(self, state: LabState) -> str:
        if state.student is None:
            return ""
        final = state.student.final
        text = (f"With {final.samples} samples per task ({final.teacher_calls} teacher calls, {final.tokens} tokens, "
                f"{final.seconds:.1f} s) the student agrees with the teacher on {final.hard_agreement:.0%} of "
                f"held-out inputs; the majority baseline on {final.baseline_agreement:.0%}.")
        if final.soft_agreement is not None:
            text += f" Trained on soft labels: {final.soft_agreement:.0%}."
        return text

    def _update_buttons(self) -> None:
        busy = self.running is not None
        state = self.state
        self.all_button.setEnabled(not busy and self._service.loaded is not None)
        self.step_buttons["teacher"].setEnabled(not busy and self._service.loaded is not None)
        self.step_buttons["student"].setEnabled(not busy and state is not None and state.teacher is not None)
        self.step_buttons["compare"].setEnabled(not busy and state is not None and state.student is not None)
        self.export_button.setEnabled(not busy and state is not None and state.teacher is not None)
        for widget in (self.style_combo, self.samples_spin, self.seed_spin):
            widget.setEnabled(not busy)
