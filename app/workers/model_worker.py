"""The model thread: the one owner of the llama.cpp Runner, with a ledger connection of its own.

ModelWorker lives on a dedicated QThread and runs the jobs ModelService.submit queues to it, one
at a time, in order: each job is a function of ModelState (model_jobs.py has the window's:
opening the ledger, registering GGUF files, loading, chat turns, server and lab requests, batch
runs, conversation and event records). So everything that touches the model, and the ledger
writes that go with it, runs on this thread, and a job never needs a lock. A running job is
stopped through its own CancelToken, which the runner checks between tokens; the thread is never
killed. Other connections write to the same ledger too (imports, audit scores, the views' events,
other processes); each append to a chain is one BEGIN IMMEDIATE transaction, so the chain stays one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.core.errors import StillroomError
from app.core.models.runner import Runner
from app.core.store import Ledger

LOG = logging.getLogger(__name__)


def default_threads() -> int:
    """Generation threads for 'auto': about one per physical core, with one core left to the window.

    llama.cpp's worker threads spin at their barriers; when they outnumber the free cores (the UI
    thread draws every token) generation slows down many times over (measured: 1.3 instead of
    30 tokens/s with 2 threads on 2 cores).
    """
    cores = os.cpu_count() or 2
    return max(1, min(cores // 2, cores - 1))


class Broadcast(StrEnum):
    """State changes every interested widget hears about, whichever job caused them; each value
    names the ModelService signal that carries it on the UI thread (with the same arguments)."""

    BUSY = "busy"                      # (text): slow work started; "" when it ends
    MODEL_LOADED = "model_loaded"      # (LoadedModel)
    MODEL_UNLOADED = "model_unloaded"  # ()
    MODELS_CHANGED = "models_changed"  # (): the registry gained or updated a model
    GPU_OFFLOAD = "gpu_offload"        # (bool): whether this llama.cpp build can offload
    FAILED = "failed"                  # (title, message): an error the user must see
    LEDGER_CHANGED = "ledger_changed"  # (): a row or record was written


class LedgerNotOpen(StillroomError):
    """A job needed the ledger before it was open (ModelService reports it as `failed`)."""

    def __init__(self) -> None:
        super().__init__("Stillroom could not open its ledger database.")


class ModelState:
    """What a job gets on the model thread: the Runner, the thread's Ledger (its write connection;
    None until a job opens it), and the two ways back to the UI thread. Used on the model thread
    only."""

    def __init__(self, announce: Callable[[Broadcast, tuple[Any, ...]], None],
                 progress: Callable[[Any], None]) -> None:
        self.runner = Runner()
        self.ledger: Ledger | None = None
        self._announce = announce
        self._progress = progress

    def require_ledger(self) -> Ledger:
        """The open ledger; raises LedgerNotOpen before a job opened it."""
        if self.ledger is None:
            raise LedgerNotOpen()
        return self.ledger

    def announce(self, broadcast: Broadcast, *args: Any) -> None:
        """Tell every listener on the UI thread (ModelService's signal named by `broadcast`)."""
        self._announce(broadcast, args)

    def progress(self, item: Any) -> None:
        """Hand `item` to the running job's own progress callback, on the UI thread."""
        self._progress(item)


class ModelWorker(QObject):
    """Owns the ModelState; lives on the model thread and runs submitted jobs there.

    Emits, from the model thread: returned(job_id, result) or raised(job_id, exception) once per
    job; progressed(job_id, item) for each ModelState.progress of a job; announced(Broadcast,
    args) for each ModelState.announce. ModelService turns these into callbacks and signals on
    the UI thread.
    """

    returned = Signal(int, object)
    raised = Signal(int, object)
    progressed = Signal(int, object)
    announced = Signal(object, object)

    def __init__(self) -> None:
        super().__init__()
        self._job_id = 0
        self.state = ModelState(self.announced.emit, lambda item: self.progressed.emit(self._job_id, item))

    @Slot(int, object)
    def run(self, job_id: int, job: Callable[[ModelState], Any]) -> None:
        """Run `job(state)` (model thread); an error the user was not meant to see is logged."""
        self._job_id = job_id
        try:
            result = job(self.state)
        except Exception as exc:  # noqa: BLE001 - handed to the caller's error callback
            if not isinstance(exc, StillroomError):
                LOG.exception("a model-thread job failed")
            self.raised.emit(job_id, exc)
            return
        self.returned.emit(job_id, result)

    @Slot()
    def close(self) -> None:
        """Unload the model, close the ledger and end the model thread's event loop."""
        self.state.runner.unload()
        if self.state.ledger is not None:
            self.state.ledger.close()
            self.state.ledger = None
        QThread.currentThread().quit()
