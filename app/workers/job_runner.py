"""One way for a view to run a long core job: a JobRunner owns the thread, Cancel, shutdown and
the busy state; each run takes its own callbacks (in the spirit of Anki's CollectionOp).

    self.jobs = JobRunner("audit", self)
    self.jobs.run(audit_job(...)).progress(self._on_progress).success(self._show).failure(self._failed)

A runner runs one job at a time (run() while busy raises RuntimeError; check `busy`). The job is a
GeneratorFactory (generator_thread.py): it yields Progress and returns its result. Every callback
is called on the UI thread:

- progress(item) for each item the job yields;
- then, once the thread has ended and the runner is free again (so a callback may start the next
  job), exactly one of success(result), failure(exception) or cancelled(); a job that raises after
  Cancel was pressed counts as cancelled;
- then finally_() in every case.

Callbacks are attached in the same turn of the event loop as run(), before any item can arrive.
shutdown() cancels the running job and waits for its thread (window close); threads are never
terminated. The thread's signals go to the runner, a QObject of the UI thread, so they are queued
there; a run itself is a plain object that only holds its callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from app.workers.generator_thread import GeneratorFactory, GeneratorThread

OUTCOMES = ("progress", "success", "failure", "cancelled", "finally")


class JobRun:
    """One run of a job and its callbacks; each setter returns the run, so they chain."""

    def __init__(self, thread: GeneratorThread) -> None:
        self.thread = thread
        self.result: Any = None
        self.error: Exception | None = None
        self._on: dict[str, list[Callable[..., object]]] = {kind: [] for kind in OUTCOMES}

    def progress(self, callback: Callable[[Any], object]) -> JobRun:
        """Call `callback(item)` for each item the job yields."""
        self._on["progress"].append(callback)
        return self

    def success(self, callback: Callable[[Any], object]) -> JobRun:
        """Call `callback(result)` with what the job returned, when it finished uncancelled."""
        self._on["success"].append(callback)
        return self

    def failure(self, callback: Callable[[Exception], object]) -> JobRun:
        """Call `callback(exception)` when the job raised (and was not cancelled)."""
        self._on["failure"].append(callback)
        return self

    def cancelled(self, callback: Callable[[], object]) -> JobRun:
        """Call `callback()` when the job was cancelled."""
        self._on["cancelled"].append(callback)
        return self

    def finally_(self, callback: Callable[[], object]) -> JobRun:
        """Call `callback()` at the end, whatever happened."""
        self._on["finally"].append(callback)
        return self

    @property
    def was_cancelled(self) -> bool:
        """True once Cancel was asked for."""
        return self.thread.cancel_token.cancelled

    def call(self, kind: str, *args: Any) -> None:
        """Call the `kind` callbacks (UI thread; the runner does)."""
        for callback in self._on[kind]:
            callback(*args)

    def finish(self) -> None:
        """Call the outcome's callbacks, then the finally_ ones, and let them go."""
        if self.was_cancelled:
            self.call("cancelled")
        elif self.error is not None:
            self.call("failure", self.error)
        else:
            self.call("success", self.result)
        self.call("finally")
        self._on.clear()


class JobRunner(QObject):
    """Runs a view's jobs one at a time on GeneratorThreads (UI thread).

    Signals (UI thread): started(), progressed(item) for each item, cancelling() when Cancel is
    asked for, ended() once a run is over (before its outcome callbacks). A ProgressStrip shows them.
    """

    started = Signal()
    progressed = Signal(object)
    cancelling = Signal()
    ended = Signal()

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.current: JobRun | None = None
        self._runs: dict[GeneratorThread, JobRun] = {}  # until each thread's done() has arrived

    @property
    def busy(self) -> bool:
        """True while a job runs."""
        return self.current is not None

    def run(self, factory: GeneratorFactory, name: str = "") -> JobRun:
        """Start `factory` on a new thread (named after the runner and `name`); returns the run, to
        attach its callbacks to. RuntimeError when a job is running already."""
        if self.current is not None:
            raise RuntimeError(f"{self.name}: a job is running already")
        thread = GeneratorThread(factory, f"{self.name}-{name}" if name else self.name, self)
        run = self.current = self._runs[thread] = JobRun(thread)
        thread.yielded.connect(self._on_yielded)
        thread.returned.connect(self._on_returned)
        thread.errored.connect(self._on_errored)
        thread.done.connect(self._on_done)
        thread.start()
        self.started.emit()
        return run

    def cancel(self) -> None:
        """Ask the running job to stop at its next check (no-op when idle)."""
        if self.current is not None and not self.current.was_cancelled:
            self.current.thread.cancel()
            self.cancelling.emit()

    def shutdown(self) -> None:
        """Cancel the running job and wait for its thread (window close); the runner is free after.
        The run's callbacks still follow, as cancelled, from the event loop."""
        if self.current is not None:
            self.current.thread.cancel()
            self.current.thread.wait()
            self.current = None

    def _run_of_sender(self) -> JobRun | None:
        return self._runs.get(self.sender())  # type: ignore[call-overload]

    @Slot(object)
    def _on_yielded(self, item: Any) -> None:
        run = self._run_of_sender()
        if run is not None:
            self.progressed.emit(item)
            run.call("progress", item)

    @Slot(object)
    def _on_returned(self, value: Any) -> None:
        run = self._run_of_sender()
        if run is not None:
            run.result = value

    @Slot(object)
    def _on_errored(self, exc: Exception) -> None:
        run = self._run_of_sender()
        if run is not None:
            run.error = exc

    @Slot()
    def _on_done(self) -> None:
        run = self._run_of_sender()
        if run is None:
            return
        del self._runs[run.thread]
        run.thread.wait()
        run.thread.deleteLater()
        if self.current is run:
            self.current = None
        self.ended.emit()
        run.finish()
