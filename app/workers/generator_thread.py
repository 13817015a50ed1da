"""Run a core generator on its own QThread and turn what it yields and returns into signals
(napari / superqt style).

    thread = GeneratorThread(lambda cancel: ledger.iter_verify(cancel), "verify")
    thread.yielded.connect(on_progress)
    thread.returned.connect(on_result)
    thread.start()

Views do not drive threads by hand: they run their jobs through a JobRunner (job_runner.py).

The factory is called on the new thread with a CancelToken; cancel() sets it and the loop also
stops asking the generator for more (closing it), so a generator that checks the token between
chunks stops within one chunk. Threads are never terminated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QThread, Signal

from app.core.cancel import CancelToken

GeneratorFactory = Callable[[CancelToken], Iterator[Any]]
_RUNNING: set[GeneratorThread] = set()


class GeneratorThread(QThread):
    """A one-off thread that drives one generator.

    Signals, all emitted from this thread (queued to receivers on the UI thread):
    yielded(item) for each item; returned(value) with what the generator returned, only when it
    ran to its end without being cancelled; errored(exception) if it raised; done() at the end in
    every case (after the others). QThread.finished follows once the thread has stopped.
    """

    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(object)
    done = Signal()

    def __init__(self, factory: GeneratorFactory, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"stillroom-{name}")
        self._factory = factory
        self.cancel_token = CancelToken()
        self.finished.connect(self._forget)

    def start(self, *args: Any) -> None:  # noqa: D102 - keeps a reference while it runs
        _RUNNING.add(self)
        super().start(*args)

    def cancel(self) -> None:
        """Ask the generator to stop at its next check (any thread)."""
        self.cancel_token.cancel()

    def run(self) -> None:
        """Thread body: iterate the generator, emitting each item, then what it returned."""
        try:
            generator = self._factory(self.cancel_token)
            try:
                while not self.cancel_token.cancelled:
                    try:
                        item = next(generator)
                    except StopIteration as stop:
                        if not self.cancel_token.cancelled:
                            self.returned.emit(stop.value)
                        break
                    self.yielded.emit(item)
            finally:
                close = getattr(generator, "close", None)
                if close is not None:
                    close()
        except Exception as exc:  # noqa: BLE001 - reported to the UI as a signal
            self.errored.emit(exc)
        finally:
            self.done.emit()

    def _forget(self) -> None:
        _RUNNING.discard(self)


def _live() -> list[GeneratorThread]:
    """The threads still known here whose Qt object exists. A thread's parent (a job runner, its
    view) may be deleted after the thread ended but before its queued `finished` reached _forget;
    such a wrapper must not be touched again (calling into it would crash), so it is dropped."""
    for thread in [thread for thread in _RUNNING if not shiboken6.isValid(thread)]:
        _RUNNING.discard(thread)
    return list(_RUNNING)


def running_threads() -> list[GeneratorThread]:
    """Generator threads that have been started and not yet finished."""
    return [thread for thread in _live() if thread.isRunning()]


def stop_all() -> None:
    """Cancel every running generator thread and wait for each to end (UI thread, at shutdown).

    A generator that does not check its token (an export) is waited for: destroying a running
    QThread would abort the process."""
    threads = _live()
    for thread in threads:
        thread.cancel()
    for thread in threads:
        thread.wait()
        _RUNNING.discard(thread)
