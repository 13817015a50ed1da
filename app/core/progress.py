"""The one protocol of Stillroom's long-running jobs: yield Progress, `return` the result.

A job is a generator that takes a CancelToken, yields Progress items (or a subclass carrying the
job's own extra fields) and returns its result; a job that runs another writes
`result = yield from step(...)`. A cancelled job stops at its next check and returns None (or
the partial result its callers want), or raises its own error that says so. The desktop app drives a job on a worker thread, which
hands the result back as a signal; the command line and tests call `drive`.

Some generators are streams, not jobs, and yield their output item by item: token chunks,
doctor checks, dataset rows, per-workflow audits.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

R = TypeVar("R")
P = TypeVar("P")
Q = TypeVar("Q")


@dataclass(frozen=True)
class Progress:
    """Where a job is: its stage, `done` of `total` within the stage (total None or 0 when not
    known) and, where the job has one, a line to show."""

    stage: str
    done: int = 0
    total: int | None = None
    message: str = ""

    @property
    def fraction(self) -> float | None:
        """Share of the stage done, 0..1, when the total is known."""
        return min(1.0, self.done / self.total) if self.total else None


def drive(job: Generator[P, Any, R] | Iterator[P], on_progress: Callable[[P], object] | None = None) -> R:
    """Run `job` to its end on this thread, passing each item to `on_progress`; returns what the
    job returned. The job is closed if `on_progress` raises (Ctrl+C on a command line)."""
    returned: list[R] = []

    def steps() -> Iterator[P]:
        returned.append((yield from job))

    items = steps()
    try:
        for item in items:
            if on_progress is not None:
                on_progress(item)
    finally:
        items.close()
    return returned[0]


def map_progress(job: Generator[P, Any, R], change: Callable[[P], Q]) -> Generator[Q, None, R]:
    """Run `job` as a step of another job: yield `change(item)` for each of its items and return
    its result (`result = yield from map_progress(step, relabel)`). Closing this closes `job`."""
    try:
        while True:
            try:
                item = next(job)
            except StopIteration as stop:
                return stop.value
            yield change(item)
    finally:
        job.close()


def one_step(work: Callable[[], R]) -> Generator[Progress, None, R]:
    """A job without progress: runs `work()` when first asked for an item and returns its result
    (short work that is still kept off the UI thread: an export, a backup, a key written)."""
    result = work()
    yield from ()
    return result
