"""The whole lab in one generator (the CLI's path): teacher, student, compare, each timed.

The GUI runs the same three step generators one at a time (teacher through the model thread);
this chains them for callers that own the runner, the ledger and the encoder on one thread.
"""

from __future__ import annotations

import time
from collections.abc import Generator

from app.core.audit.embeddings import Encoder
from app.core.audit.patterns import PatternLibrary
from app.core.cancel import NEVER, CancelToken
from app.core.lab.compare import run_compare
from app.core.lab.state import LabConfig, LabState, new_run_id
from app.core.lab.student import run_student
from app.core.lab.tasks import TaskSet
from app.core.lab.teacher import Generate, run_teacher
from app.core.progress import Progress, map_progress
from app.core.store import Ledger

STEPS = ("teacher", "student", "compare")


def as_step(step: str, item: Progress) -> Progress:
    """A step generator's progress as the lab's: the step as its stage, with a line to show."""
    return Progress(step, item.done, item.total, item.message or f"audit: {item.stage}")


def run_lab(generate: Generate, ledger: Ledger, encoder: Encoder, library: PatternLibrary, tasks: TaskSet,
            config: LabConfig, cancel: CancelToken = NEVER) -> Generator[Progress, None, LabState]:
    """Run the three steps; yields Progress (stage: the step), returns the LabState (also when
    cancelled, with the steps finished so far). Runs on the thread that owns the runner behind
    `generate` and `ledger`."""
    config.check(tasks)
    state = LabState(config, new_run_id(config))
    started = time.perf_counter()
    state.teacher = yield from map_progress(
        run_teacher(generate, tasks, config.style, config.samples, config.seed, state.run_id, cancel),
        lambda item: as_step("teacher", item))
    state.timings["teacher"] = time.perf_counter() - started
    if state.teacher is None or cancel.cancelled:
        return state
    started = time.perf_counter()
    state.student = yield from map_progress(run_student(state.teacher, tasks, encoder, cancel),
                                            lambda item: as_step("student", item))
    state.timings["student"] = time.perf_counter() - started
    if state.student is None or cancel.cancelled:
        return state
    started = time.perf_counter()
    state.compare = yield from map_progress(
        run_compare(ledger.db, encoder, library, state.teacher, state.student, cancel),
        lambda item: as_step("compare", item))
    state.timings["compare"] = time.perf_counter() - started
    return state
