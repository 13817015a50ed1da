"""The Lab view's long jobs, as generator factories for its JobRunner (Qt-free); each yields
Progress and returns the step's result (None when cancelled).

The teacher job calls a Generate that runs each generation on the model thread. The student job
embeds with an encoder made on the worker thread the first time (torch is imported then). The
compare job opens its own ledger connection on the worker thread, as the audit does, because the
audit writes embeddings and scores.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from app.core.audit.embeddings import Encoder
from app.core.audit.patterns import PatternLibrary, load_library
from app.core.cancel import CancelToken
from app.core.lab.compare import run_compare
from app.core.lab.state import LabConfig
from app.core.lab.student import StudentResult, run_student
from app.core.lab.tasks import TaskSet
from app.core.lab.teacher import Generate, TeacherResult, run_teacher
from app.core.store import open_db

Factory = Callable[[CancelToken], Generator[Any, None, Any]]


class LabModels:
    """The encoder and the pattern library, made on a worker thread when first needed and kept."""

    def __init__(self) -> None:
        self._encoder: Encoder | None = None
        self._library: PatternLibrary | None = None
        self._lock = threading.Lock()

    def encoder(self) -> Encoder:
        """The encoder with its model loaded (worker thread)."""
        with self._lock:
            if self._encoder is None:
                self._encoder = Encoder()
        self._encoder.model()
        return self._encoder

    def library(self) -> PatternLibrary:
        """The pattern library (worker thread)."""
        with self._lock:
            if self._library is None:
                self._library = load_library()
            return self._library


def teacher_job(generate: Generate, tasks: TaskSet, config: LabConfig, run_id: str) -> Factory:
    """TeacherProgress items; returns the TeacherResult."""
    return lambda cancel: run_teacher(generate, tasks, config.style, config.samples, config.seed, run_id, cancel)


def student_job(teacher: TeacherResult, tasks: TaskSet, models: LabModels) -> Factory:
    """Progress items; returns the StudentResult."""
    return lambda cancel: run_student(teacher, tasks, models.encoder, cancel)


def compare_job(ledger_path: Path, teacher: TeacherResult, student: StudentResult, models: LabModels) -> Factory:
    """The audit's Progress items; returns the CompareResult."""

    def run(cancel: CancelToken) -> Generator[Any, None, Any]:
        encoder, library = models.encoder(), models.library()
        db = open_db(ledger_path)
        try:
            return (yield from run_compare(db, encoder, library, teacher, student, cancel))
        finally:
            db.close()

    return run
