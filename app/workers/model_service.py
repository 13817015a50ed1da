"""ModelService: the UI thread's handle on the model thread (see model_worker.ModelWorker).

One way in, as with DbExecutor: submit(job, on_done, on_error, on_progress) queues a function of
ModelState to the model thread and returns at once; its callbacks run on the UI thread. The methods
below (load, chat, start_batch, …) only bind a model_jobs function and the bookkeeping the window
reads (`loaded`, `busy_text`, `generating`). What every widget must hear, whichever job caused it,
comes as this object's signals, emitted on the UI thread after that bookkeeping, so that any slot
or lambda may connect to them. A running chat is stopped through its CancelToken.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.core.batch.run import BatchControl, BatchFinished, BatchProgress
from app.core.batch.spec import BatchSpec
from app.core.cancel import CancelToken
from app.core.generation import LogContext
from app.core.models.runner import LoadedModel, LoadOptions
from app.core.models.sampling import GenerationRequest
from app.core.serve.model_host import HostBusyError, Job, fail_job
from app.core.store.conversations import Conversation
from app.workers import model_jobs
from app.workers.model_jobs import ChatOutcome
from app.workers.model_worker import Broadcast, LedgerNotOpen, ModelState, ModelWorker, default_threads

LOG = logging.getLogger(__name__)
SHUTDOWN_WAIT_MS = 10_000
LEDGER_NOT_OPEN = "The ledger is not open"

ModelJob = Callable[[ModelState], Any]
Callback = Callable[[Any], None]
ErrorCallback = Callable[[Exception], None]


def _ignore(_value: Any) -> None:
    """The callback of a result or a progress item nobody asked for."""


class JobCallbacks(NamedTuple):
    """What runs on the UI thread for one submitted job."""

    on_done: Callback
    on_error: ErrorCallback | None
    on_progress: Callback


class ModelService(QObject):
    """The UI thread's handle on the model thread. Lives on the UI thread.

    Signals (UI thread): ledger_ready(path) once the ledger is open; busy(text) when slow work
    starts and busy("") when it ends; model_loaded(LoadedModel); model_unloaded(); models_changed()
    after a registration; gpu_offload(bool) after a load; failed(title, message) for errors the
    user must see; ledger_changed() after any row or record was written.
    """

    ledger_ready = Signal(str)
    busy = Signal(str)
    model_loaded = Signal(object)
    model_unloaded = Signal()
    models_changed = Signal()
    gpu_offload = Signal(bool)
    failed = Signal(str, str)
    ledger_changed = Signal()

    _queued = Signal(int, object)
    _closing = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("stillroom-model")
        self.worker = ModelWorker()
        self.worker.moveToThread(self._thread)
        self._queued.connect(self.worker.run)
        self._closing.connect(self.worker.close)
        # bound methods of this UI-thread object: Qt queues these calls to the UI thread
        self.worker.returned.connect(self._on_returned)
        self.worker.raised.connect(self._on_raised)
        self.worker.progressed.connect(self._on_progressed)
        self.worker.announced.connect(self._on_announced)
        self.loaded: LoadedModel | None = None
        self.busy_text = ""
        self.generating = False
        self.gpu_offload_supported = False
        self._cancel: CancelToken | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # submit() is also called from server and lab threads
        self._callbacks: dict[int, JobCallbacks] = {}
        self._stopped = False

    def submit(self, job: ModelJob, on_done: Callback | None = None, on_error: ErrorCallback | None = None,
               on_progress: Callback | None = None) -> int:
        """Run `job(state)` on the model thread after the jobs queued before it (any thread).

        On the UI thread: `on_progress(item)` for each state.progress(item) of the job, then
        `on_done(result)` or `on_error(exc)`. A job that needs the ledger before it is open ends
        with the `failed` signal instead. Returns the job's id; 0 (and the job is dropped) after
        shutdown().
        """
        with self._lock:
            if self._stopped:
                return 0
            job_id = next(self._ids)
            self._callbacks[job_id] = JobCallbacks(on_done or _ignore, on_error, on_progress or _ignore)
        self._queued.emit(job_id, job)
        return job_id

    def start(self, ledger_path: Path) -> None:
        """Start the model thread and open the ledger on it (ledger_ready or failed follows)."""
        self._thread.start()
        self.submit(partial(model_jobs.open_ledger, path=str(ledger_path)), self.ledger_ready.emit,
                    self._report("The ledger cannot be opened"))

    def add_models(self, paths: list[str], options: LoadOptions) -> None:
        """Register GGUF files (read metadata, check they fit with `options`, hash); errors arrive
        as `failed`."""
        self.submit(partial(model_jobs.add_models, paths=list(paths), options=options))

    def load(self, ref: str | None, options: LoadOptions, fall_back_to_default: bool = False) -> None:
        """Load the model with this sha256, or the bundled chat model when `ref` is None ('auto'
        threads become default_threads())."""
        if options.n_threads is None:
            options = replace(options, n_threads=default_threads())
        self.busy_text = "Loading…"
        self.submit(partial(model_jobs.load_model, ref=ref, options=options,
                            fall_back_to_default=fall_back_to_default))

    def unload(self) -> None:
        """Free the loaded model."""
        self.submit(model_jobs.unload_model)

    def chat(self, conversation: Conversation, request: GenerationRequest, context: LogContext,
             on_token: Callable[[str], None], on_done: Callable[[ChatOutcome], None],
             on_error: ErrorCallback) -> CancelToken:
        """Queue a chat turn: `on_token(text)` per streamed piece, then `on_done(ChatOutcome)` once
        its row is committed, or `on_error(exc)` when it could not run (no model, prompt too long).
        `generating` is True until then. Returns the turn's cancel token (stop() cancels it too)."""
        self._cancel = cancel = CancelToken()
        self.generating = True
        self.submit(partial(model_jobs.chat_turn, conversation=conversation, request=request, context=context,
                            cancel=cancel),
                    partial(self._end_turn, on_done), partial(self._end_turn, on_error), on_token)
        return cancel

    def stop(self) -> None:
        """Stop the running turn after the token being generated (any state; no-op when idle)."""
        if self._cancel is not None:
            self._cancel.cancel()

    def start_batch(self, spec: BatchSpec, on_created: Callable[[int], None],
                    on_progress: Callable[[BatchProgress], None],
                    on_done: Callable[[BatchFinished], None]) -> BatchControl:
        """Store a new batch job (`on_created(job_id)`), then run it as run_batch does; returns the
        control that pauses or cancels it. A job that cannot be stored is reported as `failed`."""
        control = BatchControl()

        def created(job_id: int) -> None:
            on_created(job_id)
            self._submit_run(job_id, control, on_progress, on_done)

        self.submit(partial(model_jobs.create_batch, spec=spec), created,
                    self._report("The batch job could not be stored"))
        return control

    def run_batch(self, job_id: int, on_progress: Callable[[BatchProgress], None],
                  on_done: Callable[[BatchFinished], None]) -> BatchControl:
        """Resume (or run) a stored batch job after whatever the model thread is doing:
        `on_progress(BatchProgress)` after each generation, then `on_done(BatchFinished)` when it
        stops (done, paused, cancelled or failed). Returns the control that pauses or cancels it."""
        control = BatchControl()
        self._submit_run(job_id, control, on_progress, on_done)
        return control

    def serve(self, job: Job, on_done: Callable[[None], None] | None = None) -> None:
        """Queue a server or lab generation (any thread); its events arrive through the Job, then
        `on_done(None)` on the UI thread. After shutdown the job fails at once."""
        if not self.submit(partial(model_jobs.serve, job=job), on_done):
            fail_job(job, HostBusyError("the model thread has stopped"))

    def rename_conversation(self, conversation_id: str, title: str) -> None:
        """Store a new title for a conversation."""
        self.submit(partial(model_jobs.rename, conversation_id=conversation_id, title=title),
                    on_error=self._report("The conversation could not be renamed"))

    def record_event(self, kind: str, summary: str, details: dict) -> None:
        """Log an event (e.g. settings_changed) in the ledger's event log, on the model thread."""
        self.submit(partial(model_jobs.log_event, kind=kind, summary=summary, details=details),
                    on_error=self._report("The event could not be logged"))

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> None:
        """Stop any turn, unload, close the ledger and wait for the model thread to end (UI thread).
        Callbacks of jobs not finished by now are dropped."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._callbacks.clear()
        self.stop()
        if self._thread.isRunning():
            self._closing.emit()
            # A load or a hash in progress cannot be interrupted; wait for it rather than destroy a
            # running thread (which would abort the process).
            while not self._thread.wait(timeout_ms):
                LOG.warning("still waiting for the model thread to finish its current task")

    # -- internals (UI thread) -------------------------------------------------------------------

    def _submit_run(self, job_id: int, control: BatchControl, on_progress: Callable[[BatchProgress], None],
                    on_done: Callable[[BatchFinished], None]) -> None:
        self.submit(partial(model_jobs.run_stored_batch, job_id=job_id, control=control), on_done,
                    on_progress=on_progress)

    def _end_turn(self, callback: Callable[[Any], None], value: Any) -> None:
        self.generating = False
        self._cancel = None
        callback(value)

    def _report(self, title: str) -> ErrorCallback:
        """An error callback that shows `title` and the error's message through `failed`."""
        return lambda exc: self.failed.emit(title, str(exc))

    def _take(self, job_id: int) -> JobCallbacks | None:
        """The callbacks of a job that ended (None once dropped by shutdown)."""
        with self._lock:
            return self._callbacks.pop(job_id, None)

    @Slot(int, object)
    def _on_returned(self, job_id: int, result: Any) -> None:
        if (callbacks := self._take(job_id)) is not None:
            callbacks.on_done(result)

    @Slot(int, object)
    def _on_raised(self, job_id: int, exc: Exception) -> None:
        if (callbacks := self._take(job_id)) is None:
            return
        if isinstance(exc, LedgerNotOpen):
            self.failed.emit(LEDGER_NOT_OPEN, str(exc))
        elif callbacks.on_error is not None:
            callbacks.on_error(exc)
        else:
            LOG.warning("model-thread job failed: %s", exc)

    @Slot(int, object)
    def _on_progressed(self, job_id: int, item: Any) -> None:
        with self._lock:
            callbacks = self._callbacks.get(job_id)
        if callbacks is not None:
            callbacks.on_progress(item)

    @Slot(object, object)
    def _on_announced(self, broadcast: Broadcast, args: tuple[Any, ...]) -> None:
        """Update what the window reads (loaded, busy_text, gpu_offload_supported), then emit the
        signal named by `broadcast`."""
        if broadcast is Broadcast.BUSY:
            self.busy_text = args[0]
        elif broadcast is Broadcast.MODEL_LOADED:
            self.loaded = args[0]
        elif broadcast is Broadcast.MODEL_UNLOADED:
            self.loaded = None
        elif broadcast is Broadcast.GPU_OFFLOAD:
            self.gpu_offload_supported = args[0]
        getattr(self, broadcast.value).emit(*args)
