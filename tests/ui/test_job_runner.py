"""JobRunner and GeneratorThread lifetimes: a view closed while its job runs, then deleted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import shiboken6
from PySide6.QtWidgets import QWidget

from app.core.cancel import CancelToken
from app.core.progress import Progress
from app.workers.generator_thread import running_threads, stop_all
from app.workers.job_runner import JobRunner


def _waits_for_cancel(cancel: CancelToken) -> Iterator[Progress]:
    yield Progress("waiting", 0)
    while not cancel.cancelled:
        time.sleep(0.01)


def test_a_view_deleted_after_shutdown_leaves_nothing_to_crash_on(qtbot: Any) -> None:
    """The view's runner owns the thread; deleting the view right after shutdown (before the thread's
    queued `finished` arrives) used to leave a dead thread in the running set, and the next
    stop_all() (the main window closing) crashed the process."""
    view = QWidget()
    runner = JobRunner("probe", view)
    outcomes: list[str] = []
    runner.run(_waits_for_cancel).cancelled(lambda: outcomes.append("cancelled"))
    qtbot.waitUntil(lambda: bool(running_threads()), timeout=5_000)
    runner.shutdown()
    assert not runner.busy
    shiboken6.delete(view)  # the view and, with it, the runner and its thread are gone
    assert running_threads() == []
    stop_all()  # what MainWindow.shutdown does; must not touch the deleted thread
