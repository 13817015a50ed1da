"""The whole lab in one generator (the CLI's path): teacher, student, compare, each timed.

The GUI runs the same three step generators one at a time (teacher through the model thread);
this chains them for callers that own the runner, the ledger and the encoder on one thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from app.core.audit.embeddings import Encoder
from app.core.audit.patterns import PatternLibrary
from app.core.audit.run import AuditProgress
from app.core.cancel import NEVER, CancelToken
from app.core.lab.compare import CompareResult, run_compare
from app.core.lab.state import LabConfig, LabState, new_run_id
from app.core.lab.student import StudentProgress, StudentResult, run_student
from app.core.lab.tasks import TaskSet
from app.core.lab.teacher import Generate, TeacherProgress, TeacherResult, run_teacher
from app.core.progress import relay
from app.core.store import Ledger

STEPS = ("teacher", "student", "compare")


@dataclass(frozen=True)
class LabProgress:
    """Where the lab is: the step, done/total within it and a line to show."""

    step: str
    done: int
    total: int
    message: str


def progress_of(step: str, item: TeacherProgress | StudentProgress | AuditProgress) -> LabProgress:
    """A step generator's progress item as a LabProgress."""
    if isinstance(item, TeacherProgress):
        answer = item.answer
        return LabProgress(step, item.done, item.total,
                           f"{answer.item.task}: {answer.item.text[:60]} -> {answer.label or '(no label)'}")
    if isinstance(item, StudentProgress):
        return LabProgress(step, item.done, item.total, item.message)
    return LabProgress(step, item.done, item.total, f"audit: {item.stage}")


def run_lab(generate: Generate, ledger: Ledger, encoder: Encoder, library: PatternLibrary, tasks: TaskSet,
            config: LabConfig, cancel: CancelToken = NEVER) -> Iterator[LabProgress | LabState]:
    """Run the three steps; yields LabProgress, then the LabState (also when cancelled, with the
    steps finished so far). Runs on the thread that owns the runner behind `generate` and `ledger`."""
    config.check(tasks)
    state = LabState(config, new_run_id(config))
    started = time.perf_counter()
    state.teacher = yield from relay(
        run_teacher(generate, tasks, config.style, config.samples, config.seed, state.run_id, cancel),
        TeacherResult, lambda item: progress_of("teacher", item))
    state.timings["teacher"] = time.perf_counter() - started
    if state.teacher is None or cancel.cancelled:
        yield state
        return
    started = time.perf_counter()
    state.student = yield from relay(run_student(state.teacher, tasks, encoder, cancel), StudentResult,
                                     lambda item: progress_of("student", item))
    state.timings["student"] = time.perf_counter() - started
    if state.student is None or cancel.cancelled:
        yield state
        return
    started = time.perf_counter()
    state.compare = yield from relay(run_compare(ledger.db, encoder, library, state.teacher, state.student, cancel),
                                     CompareResult, lambda item: progress_of("compare", item))
    state.timings["compare"] = time.perf_counter() - started
    yield state
