"""Closing the main window stops every view's background work: each view's jobs are cancelled and
their threads have ended when close returns (nothing is terminated, nothing hangs)."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any

from app.core.cancel import CancelToken
from app.core.progress import Progress
from app.ui.main_window import MainWindow
from app.workers.generator_thread import running_threads
from app.workers.job_runner import JobRunner

PATIENCE_S = 30.0  # a job that is never cancelled gives up after this, so that a failure cannot hang


def job_waiting_for_cancel(seen: dict[str, bool], name: str) -> Callable[[CancelToken], Generator[Progress, None, None]]:
    """A job that says it started, then waits until it is cancelled; `seen[name]` records whether it was."""

    def run(cancel: CancelToken) -> Generator[Progress, None, None]:
        yield Progress("waiting")
        deadline = time.monotonic() + PATIENCE_S
        while not cancel.cancelled and time.monotonic() < deadline:
            time.sleep(0.01)
        seen[name] = cancel.cancelled

    return run


def test_closing_the_window_cancels_every_views_jobs_and_ends_their_threads(qtbot: Any,
                                                                           window: MainWindow) -> None:
    runners = {f"{view.key}/{runner.name}": runner for view in window.views for runner in view.findChildren(JobRunner)}
    assert {"ledger/verify", "ledger/export", "ledger/backup", "server/api-keys", "server/proxy-start", "audit/audit",
            "provenance/provenance", "lab/lab", "screen/screen"} <= set(runners)
    qtbot.waitUntil(lambda: not any(runner.busy for runner in runners.values()), timeout=10_000)
    seen: dict[str, bool] = {}
    started = []
    for name, runner in runners.items():
        runner.run(job_waiting_for_cancel(seen, name)).progress(lambda _item, name=name: started.append(name))
    qtbot.waitUntil(lambda: len(started) == len(runners), timeout=10_000)
    assert all(runner.busy for runner in runners.values()) and running_threads()

    began = time.monotonic()
    window.close()

    assert time.monotonic() - began < PATIENCE_S
    assert seen == {name: True for name in runners}  # every job saw its cancel and ended
    assert running_threads() == [] and not any(runner.busy for runner in runners.values())
