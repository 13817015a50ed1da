"""The model thread: the one owner of the llama.cpp Runner and of the ledger's write connection.

ModelWorker lives on a dedicated QThread. Everything that touches the model or writes to the
database runs there, one request at a time, in order: opening the ledger, registering GGUF files,
loading and unloading, chat turns (through generate_logged, the same path as the CLI) and
conversation records. ModelService is the UI thread's handle: its methods queue requests, and it
re-emits the worker's signals on the UI thread. A running chat is stopped through its CancelToken,
which the runner checks between tokens; the thread itself is never killed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.core.cancel import CancelToken
from app.core.errors import StillroomError
from app.core.generation import LogContext, LoggedGeneration, generate_logged
from app.core.models.default_model import resolve_model
from app.core.models.gguf_info import GGUFInfo
from app.core.models.memory import check_fits
from app.core.models.registry import find_model, register_model
from app.core.models.runner import GenerationResult, LoadedModel, LoadOptions, Runner
from app.core.models.sampling import GenerationRequest
from app.core.store import Ledger
from app.core.store.conversations import Conversation, rename_conversation, save_conversation
from app.core.store.ledger import utc_now

LOG = logging.getLogger(__name__)
SHUTDOWN_WAIT_MS = 10_000


def default_threads() -> int:
    """Generation threads for 'auto': about one per physical core, with one core left to the window.

    llama.cpp's worker threads spin at their barriers; when they outnumber the free cores (the UI
    thread draws every token) generation slows down many times over (measured: 1.3 instead of
    30 tokens/s with 2 threads on 2 cores).
    """
    cores = os.cpu_count() or 2
    return max(1, min(cores // 2, cores - 1))


@dataclass(frozen=True)
class ChatJob:
    """One chat turn to run: the conversation record to save, the request and where it is logged."""

    conversation: Conversation
    request: GenerationRequest
    context: LogContext
    cancel: CancelToken


@dataclass(frozen=True)
class ChatOutcome:
    """A finished turn (ok, cancelled or error), after its ledger row was committed."""

    conversation_id: str
    generation_id: int
    result: GenerationResult
    model_name: str | None


class ModelWorker(QObject):
    """Owns the Runner and the writer Ledger; lives on the model thread.

    All signals are emitted from the model thread:
    ledger_ready(path) once the ledger is open; busy(text) when slow work starts and busy("") when
    it ends; model_loaded(LoadedModel); model_unloaded(); models_changed() after a registration;
    gpu_offload(bool) once llama.cpp is imported; failed(title, message) for errors the user must
    see; token(text) per streamed piece; chat_finished(ChatOutcome); chat_failed(message) when a
    turn could not start (no model, prompt too long); ledger_changed() after any row or record was
    written.
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

    def __init__(self) -> None:
        super().__init__()
        self._runner = Runner()
        self._ledger: Ledger | None = None

    # -- slots (model thread) ------------------------------------------------------------------

    @Slot(str)
    def open_ledger(self, path: str) -> None:
        try:
            self._ledger = Ledger.open(path)
        except StillroomError as exc:
            self.failed.emit("The ledger cannot be opened", str(exc))
            return
        self.ledger_ready.emit(path)

    @Slot(object, object)
    def add_models(self, paths: list[str], options: LoadOptions) -> None:
        """Register GGUF files; one too large to load with `options` is refused before hashing."""
        ledger = self._require_ledger()
        if ledger is None:
            return

        def fits(info: GGUFInfo) -> None:
            check_fits(info, options.n_ctx, options.n_gpu_layers)

        try:
            for path in paths:
                self.busy.emit(f"Reading {Path(path).name}…")
                try:
                    register_model(ledger.db, path, precheck=fits)
                except StillroomError as exc:
                    self.failed.emit("This model file cannot be used", str(exc))
                except OSError as exc:
                    self.failed.emit("This model file cannot be read", f"{path}: {exc.strerror or exc}")
                else:
                    self.models_changed.emit()
        finally:
            self.busy.emit("")

    @Slot(object, object, bool)
    def load_model(self, ref: str | None, options: LoadOptions, fall_back_to_default: bool) -> None:
        """Load a model by sha256 (None: the default model, assembled on first use)."""
        ledger = self._require_ledger()
        if ledger is None:
            return
        try:
            self.busy.emit("Preparing the default model…" if ref is None else "Reading the model file…")
            try:
                record = resolve_model(ledger.db, None) if ref is None else \
                    register_model(ledger.db, find_model(ledger.db, ref)["path"])
                self.models_changed.emit()
                self.busy.emit(f"Loading {record.info.name}…")
                loaded = self._runner.load(record.sha256, record.info, options)
            except StillroomError as exc:
                if self._runner.loaded is None:  # a failed llama.cpp load has closed the old model
                    self.model_unloaded.emit()
                self.failed.emit("The model could not be loaded", str(exc))
                if ref is not None and fall_back_to_default:
                    self.load_model(None, options, False)
                return
            self.model_loaded.emit(loaded)
            self._report_gpu_support()
        finally:
            self.busy.emit("")

    @Slot()
    def unload_model(self) -> None:
        self._runner.unload()
        self.model_unloaded.emit()

    @Slot(object)
    def run_chat(self, job: ChatJob) -> None:
        """Save the conversation record, then stream the turn through generate_logged."""
        ledger = self._require_ledger()
        if ledger is None:
            return
        loaded = self._runner.loaded
        try:
            conversation = replace(job.conversation, updated_at=utc_now(),
                                   model_sha256=loaded.sha256 if loaded else job.conversation.model_sha256)
            save_conversation(ledger.db, conversation)
            final: LoggedGeneration | None = None
            for item in generate_logged(self._runner, ledger, job.request, job.context, job.cancel):
                if isinstance(item, LoggedGeneration):
                    final = item
                else:
                    self.token.emit(item.text)
        except StillroomError as exc:
            self.chat_failed.emit(str(exc))
            self.ledger_changed.emit()
            return
        except Exception as exc:  # noqa: BLE001 - llama.cpp failures are logged as error rows
            LOG.exception("chat turn failed")
            self.chat_failed.emit(f"{type(exc).__name__}: {exc}")
            self.ledger_changed.emit()
            return
        assert final is not None
        self.ledger_changed.emit()
        name = loaded.info.name if loaded else None
        self.chat_finished.emit(ChatOutcome(conversation.id, final.generation_id, final.result, name))

    @Slot(str, str)
    def rename_conversation(self, conversation_id: str, title: str) -> None:
        ledger = self._require_ledger()
        if ledger is None:
            return
        try:
            rename_conversation(ledger.db, conversation_id, title)
        except StillroomError as exc:
            self.failed.emit("The conversation could not be renamed", str(exc))
            return
        self.ledger_changed.emit()

    @Slot()
    def shutdown(self) -> None:
        """Unload the model, close the ledger and end the model thread's event loop."""
        self._runner.unload()
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        QThread.currentThread().quit()

    # -- helpers ---------------------------------------------------------------------------------

    def _require_ledger(self) -> Ledger | None:
        if self._ledger is None:
            self.failed.emit("The ledger is not open", "Stillroom could not open its ledger database.")
        return self._ledger

    def _report_gpu_support(self) -> None:
        from app.core.models.runner import gpu_offload_supported

        self.gpu_offload.emit(gpu_offload_supported())


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

    _open_ledger = Signal(str)
    _add_models = Signal(object, object)
    _load = Signal(object, object, bool)
    _unload = Signal()
    _chat = Signal(object)
    _rename = Signal(str, str)
    _shutdown = Signal()

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
                              (self._shutdown, worker.shutdown)):
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
        worker.ledger_ready.connect(self._relay_ledger_ready)
        worker.models_changed.connect(self._relay_models_changed)
        worker.failed.connect(self._relay_failed)
        worker.token.connect(self._relay_token)
        worker.ledger_changed.connect(self._relay_ledger_changed)

    def start(self, ledger_path: Path) -> None:
        """Start the model thread and open the ledger on it."""
        self._thread.start()
        self._open_ledger.emit(str(ledger_path))

    def add_models(self, paths: list[str], options: LoadOptions) -> None:
        """Register GGUF files (read metadata, check they fit with `options`, hash); errors arrive
        as `failed`."""
        self._add_models.emit(list(paths), options)

    def load(self, ref: str | None, options: LoadOptions, fall_back_to_default: bool = False) -> None:
        """Load the model with this sha256, or the default model when `ref` is None ('auto' threads
        become default_threads())."""
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

    def rename_conversation(self, conversation_id: str, title: str) -> None:
        """Store a new title for a conversation."""
        self._rename.emit(conversation_id, title)

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

    @Slot(str)
    def _relay_ledger_ready(self, path: str) -> None:
        self.ledger_ready.emit(path)

    @Slot()
    def _relay_models_changed(self) -> None:
        self.models_changed.emit()

    @Slot(str, str)
    def _relay_failed(self, title: str, message: str) -> None:
        self.failed.emit(title, message)

    @Slot(str)
    def _relay_token(self, text: str) -> None:
        self.token.emit(text)

    @Slot()
    def _relay_ledger_changed(self) -> None:
        self.ledger_changed.emit()
