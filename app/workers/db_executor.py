"""One thread for the UI's database reads (Anki-style executor), on its own read-only connection.

Widgets never query SQLite on the UI thread: they submit a function of the database and get its
result in a callback on the UI thread. Jobs run one at a time, in the order submitted. Long work
(export, verification) runs on a GeneratorThread instead, so that it does not hold up the queries
that keep the table scrolling.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot
from sqlite_utils import Database

from app.core.store import open_db

LOG = logging.getLogger(__name__)
Job = Callable[[Database], Any]
Callback = Callable[[Any], None]
ErrorCallback = Callable[[Exception], None]


class _DbWorker(QObject):
    """Lives on the database thread; runs jobs on its read-only connection.

    Emits (from the database thread) succeeded(job_id, result) or failed(job_id, exception).
    """

    succeeded = Signal(int, object)
    failed = Signal(int, object)

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path
        self._db: Database | None = None

    @Slot(int, object)
    def run(self, job_id: int, job: Job) -> None:
        try:
            if self._db is None:
                self._db = open_db(self._path, readonly=True)
            result = job(self._db)
        except Exception as exc:  # noqa: BLE001 - handed to the caller's error callback
            self.failed.emit(job_id, exc)
            return
        self.succeeded.emit(job_id, result)

    @Slot()
    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        QThread.currentThread().quit()


class DbExecutor(QObject):
    """The UI thread's handle on the database thread. Lives on the UI thread.

    submit() queues a job; its callback runs on the UI thread when the job is done. Callbacks of
    jobs still queued at stop() are dropped.
    """

    _queued = Signal(int, object)
    _closing = Signal()

    def __init__(self, path: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("stillroom-db")
        self._worker = _DbWorker(path)
        self._worker.moveToThread(self._thread)
        self._queued.connect(self._worker.run)
        self._closing.connect(self._worker.close)
        self._worker.succeeded.connect(self._on_succeeded)
        self._worker.failed.connect(self._on_failed)
        self._ids = itertools.count(1)
        self._callbacks: dict[int, tuple[Callback, ErrorCallback | None]] = {}
        self._stopped = False

    def start(self) -> None:
        """Start the database thread (once)."""
        self._thread.start()

    def submit(self, job: Job, on_done: Callback, on_error: ErrorCallback | None = None) -> int:
        """Run `job(db)` on the database thread; `on_done(result)` or `on_error(exc)` on the UI thread."""
        if self._stopped:
            return 0
        job_id = next(self._ids)
        self._callbacks[job_id] = (on_done, on_error)
        self._queued.emit(job_id, job)
        return job_id

    @property
    def pending(self) -> int:
        """Jobs submitted whose callbacks have not run yet."""
        return len(self._callbacks)

    def stop(self, timeout_ms: int = 5_000) -> None:
        """Close the connection and end the thread, after the job in progress (UI thread); waits
        for that job however long it takes."""
        if self._stopped:
            return
        self._stopped = True
        self._callbacks.clear()
        if self._thread.isRunning():
            self._closing.emit()
            while not self._thread.wait(timeout_ms):  # never destroy a running thread
                LOG.warning("still waiting for the database thread to finish its current job")

    @Slot(int, object)
    def _on_succeeded(self, job_id: int, result: Any) -> None:
        callbacks = self._callbacks.pop(job_id, None)
        if callbacks is not None:
            callbacks[0](result)

    @Slot(int, object)
    def _on_failed(self, job_id: int, exc: Exception) -> None:
        callbacks = self._callbacks.pop(job_id, None)
        if callbacks is None:
            return
        if callbacks[1] is not None:
            callbacks[1](exc)
        else:
            LOG.warning("database job failed: %s", exc)
