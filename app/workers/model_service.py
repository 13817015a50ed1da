"""ModelService: the UI thread's handle on the model thread (see model_worker.ModelWorker).

Its methods queue requests to the worker and return at once; it re-emits the worker's signals on
the UI thread, after updating `loaded`, `busy_text` and `generating`, so that widgets and lambdas
may connect to it directly. A running chat is stopped through its CancelToken.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.core.batch.run import BatchControl
from app.core.batch.spec import BatchSpec
from app.core.cancel import CancelToken
from app.core.generation import LogContext
from app.core.models.runner import LoadedModel, LoadOptions
from app.core.models.sampling import GenerationRequest
from app.core.store.conversations import Conversation
from app.workers.model_worker import ChatJob, ChatOutcome, ModelWorker, default_threads

LOG = logging.getLogger(__name__)
SHUTDOWN_WAIT_MS = 10_000
RELAYED = ("ledger_ready", "models_changed", "failed", "token", "ledger_changed", "server_job_done",
           "batch_created", "batch_progress", "batch_finished")


class ModelService(QObject):
    """The UI thread's handle on the model thread. Lives on the UI thread.

    Methods queue requests to the worker and return at once. The worker's signals are re-emitted
    by this object on the UI thread (same names and arguments, see ModelWorker), after `loaded`,
    `busy_text` and `generating` were updated, so any slot or lambda may connect to them.
    """

    ledger_ready = Signal(str)
    busy = Signal(str)
    model_loaded = Signal(object)
    model_unloaded = Signal()
    models_changed = Signal()
    gpu_offload = Signal(bool)
    failed = Signal(str, str)
    token = Signal(str)
    chat_finished = Signal(object)
    chat_failed = Signal(str)
    ledger_changed = Signal()
    server_job_done = Signal()
    batch_created = Signal(int)
    batch_progress = Signal(object)
    batch_finished = Signal(object)

    _open_ledger = Signal(str)
    _add_models = Signal(object, object)
    _load = Signal(object, object, bool)
    _unload = Signal()
    _chat = Signal(object)
    _rename = Signal(str, str)
    _record_event = Signal(str, str, object)
    _shutdown = Signal()
    _start_batch = Signal(object, object)
    _run_batch = Signal(int, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("stillroom-model")
        self.worker = ModelWorker()
        self.worker.moveToThread(self._thread)
        worker = self.worker
        for request, slot in ((self._open_ledger, worker.open_ledger), (self._add_models, worker.add_models),
                              (self._load, worker.load_model), (self._unload, worker.unload_model),
                              (self._chat, worker.run_chat), (self._rename, worker.rename_conversation),
                              (self._shutdown, worker.shutdown), (self._start_batch, worker.start_batch),
                              (self._run_batch, worker.run_batch), (self._record_event, worker.record_event)):
            request.connect(slot)
        self.loaded: LoadedModel | None = None
        self.busy_text = ""
        self.generating = False
        self.gpu_offload_supported = False
        self._cancel: CancelToken | None = None
        self._stopped = False
        # bound methods of this UI-thread object: Qt queues these calls to the UI thread
        worker.model_loaded.connect(self._on_loaded)
        worker.model_unloaded.connect(self._on_unloaded)
        worker.busy.connect(self._on_busy)
        worker.gpu_offload.connect(self._on_gpu)
        worker.chat_finished.connect(self._on_chat_finished)
        worker.chat_failed.connect(self._on_chat_failed)
        for name in RELAYED:  # signal to signal: queued to this object's (the UI) thread as well
            getattr(worker, name).connect(getattr(self, name))

    def start(self, ledger_path: Path) -> None:
        """Start the model thread and open the ledger on it."""
        self._thread.start()
        self._open_ledger.emit(str(ledger_path))

    def add_models(self, paths: list[str], options: LoadOptions) -> None:
        """Register GGUF files (read metadata, check they fit with `options`, hash); errors arrive
        as `failed`."""
        self._add_models.emit(list(paths), options)

    def load(self, ref: str | None, options: LoadOptions, fall_back_to_default: bool = False) -> None:
        """Load the model with this sha256, or the bundled chat model when `ref` is None ('auto'
        threads become default_threads())."""
        if options.n_threads is None:
            options = replace(options, n_threads=default_threads())
        self.busy_text = "Loading…"
        self._load.emit(ref, options, fall_back_to_default)

    def unload(self) -> None:
        """Free the loaded model."""
        self._unload.emit()

    def chat(self, conversation: Conversation, request: GenerationRequest, context: LogContext) -> CancelToken:
        """Queue a chat turn; returns its cancel token (stop() cancels it too)."""
        self._cancel = CancelToken()
        self.generating = True
        self._chat.emit(ChatJob(conversation, request, context, self._cancel))
        return self._cancel

    def stop(self) -> None:
        """Stop the running turn after the token being generated (any state; no-op when idle)."""
        if self._cancel is not None:
            self._cancel.cancel()

    def start_batch(self, spec: BatchSpec) -> BatchControl:
        """Store a new batch job and run it after whatever the model thread is doing; returns the
        control that pauses or cancels it (batch_created, batch_progress, batch_finished follow)."""
        control = BatchControl()
        self._start_batch.emit(spec, control)
        return control

    def run_batch(self, job_id: int) -> BatchControl:
        """Resume (or run) a stored batch job; returns its control."""
        control = BatchControl()
        self._run_batch.emit(job_id, control)
        return control

    def rename_conversation(self, conversation_id: str, title: str) -> None:
        """Store a new title for a conversation."""
        self._rename.emit(conversation_id, title)

    def record_event(self, kind: str, summary: str, details: dict) -> None:
        """Log an event (e.g. settings_changed) in the ledger's event log, on the model thread."""
        self._record_event.emit(kind, summary, details)

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> None:
        """Stop any turn, unload, close the ledger and wait for the model thread to end (UI thread)."""
        if self._stopped:
            return
        self._stopped = True
        self.stop()
        if self._thread.isRunning():
            self._shutdown.emit()
            # A load or a hash in progress cannot be interrupted; wait for it rather than destroy a
            # running thread (which would abort the process).
            while not self._thread.wait(timeout_ms):
                LOG.warning("still waiting for the model thread to finish its current task")

    @Slot(object)
    def _on_loaded(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.model_loaded.emit(loaded)

    @Slot()
    def _on_unloaded(self) -> None:
        self.loaded = None
        self.model_unloaded.emit()

    @Slot(str)
    def _on_busy(self, text: str) -> None:
        self.busy_text = text
        self.busy.emit(text)

    @Slot(bool)
    def _on_gpu(self, supported: bool) -> None:
        self.gpu_offload_supported = supported
        self.gpu_offload.emit(supported)

    @Slot(object)
    def _on_chat_finished(self, outcome: ChatOutcome) -> None:
        self.generating = False
        self._cancel = None
        self.chat_finished.emit(outcome)

    @Slot(str)
    def _on_chat_failed(self, message: str) -> None:
        self.generating = False
        self._cancel = None
        self.chat_failed.emit(message)
