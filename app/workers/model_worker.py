"""The model thread: the one owner of the llama.cpp Runner and of the ledger's write connection.

ModelWorker lives on a dedicated QThread. Everything that touches the model or writes to the
database runs there, one request at a time, in order: opening the ledger, registering GGUF files,
loading and unloading, chat turns (through generate_logged, the same path as the CLI) and
conversation records, server requests handed over by server_host.GuiModelHost (serve_job) and
batch runs (run_batch). ModelService (model_service.py) is the UI thread's handle on it. A running
chat is stopped through its CancelToken, which the runner checks between tokens; the thread itself
is never killed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.core.batch.jobs import create_job
from app.core.batch.run import BatchControl, BatchFinished, run_batch
from app.core.batch.spec import BatchSpec
from app.core.cancel import CancelToken
from app.core.errors import StillroomError
from app.core.generation import LogContext, LoggedGeneration, generate_logged
from app.core.models.bundled import register_bundled
from app.core.models.chat_model import CHAT_ALIAS
from app.core.models.gguf_info import GGUFInfo
from app.core.models.memory import check_fits
from app.core.models.registry import find_model, register_model
from app.core.models.resolve import resolve_model
from app.core.models.runner import GenerationResult, LoadOptions, Runner
from app.core.models.sampling import GenerationRequest
from app.core.serve.model_host import Job, fail_job, serve_job
from app.core.store import Ledger
from app.core.store.conversations import Conversation, rename_conversation, save_conversation
from app.core.store.events import record_event
from app.core.store.ledger import utc_now

LOG = logging.getLogger(__name__)


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
    written; server_job_done() after each server request's generation; batch_created(job_id) when a
    new batch job was stored; batch_progress(BatchProgress) after each batch generation;
    batch_finished(BatchFinished) when a batch run stops (done, paused, cancelled or failed).
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
        """Load a model by sha256 (None: the bundled chat model, after registering both bundled
        models, which assembles Gemma on first use)."""
        ledger = self._require_ledger()
        if ledger is None:
            return
        try:
            self.busy.emit("Preparing the bundled models…" if ref is None else "Reading the model file…")
            try:
                if ref is None:
                    register_bundled(ledger.db)
                record = resolve_model(ledger.db, CHAT_ALIAS) if ref is None else \
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

    @Slot(object)
    def serve_job(self, job: Job) -> None:
        """Run one server request (see app.core.serve.model_host.serve_job): its events go to the
        job's queue, read by the HTTP thread that submitted it. A request for another model loads
        that one first; model_loaded follows."""
        before = self._runner.loaded
        if self._ledger is None:
            fail_job(job, StillroomError("the ledger is not open"))
        else:
            serve_job(self._runner, self._ledger, job)
        after = self._runner.loaded
        if after is not before:  # the request named another model: the window shows the switch
            if after is None:
                self.model_unloaded.emit()
            else:
                self.model_loaded.emit(after)
        self.server_job_done.emit()
        self.ledger_changed.emit()

    @Slot(object, object)
    def start_batch(self, spec: BatchSpec, control: BatchControl) -> None:
        """Store a new batch job, then run it."""
        ledger = self._require_ledger()
        if ledger is None:
            return
        try:
            job = create_job(ledger.db, spec)
        except StillroomError as exc:
            self.failed.emit("The batch job could not be stored", str(exc))
            return
        self.batch_created.emit(job.id)
        self.run_batch(job.id, control)

    @Slot(int, object)
    def run_batch(self, job_id: int, control: BatchControl) -> None:
        """Run (or resume) a stored batch job, emitting batch_progress per generation and one
        batch_finished; pause and cancel come through `control` from the UI thread."""
        ledger = self._require_ledger()
        if ledger is None:
            return
        if self._runner.loaded is None:
            self.batch_finished.emit(BatchFinished(job_id, "failed", 0, 0, "no model is loaded"))
            return
        finished: BatchFinished | None = None
        try:
            for item in run_batch(ledger, self._runner, job_id, control):
                if isinstance(item, BatchFinished):
                    finished = item
                else:
                    self.batch_progress.emit(item)
                    self.ledger_changed.emit()
        except Exception as exc:  # noqa: BLE001 - reported as a failed run (run_batch stored the status)
            LOG.exception("batch run failed")
            finished = BatchFinished(job_id, "failed", 0, 0, f"{type(exc).__name__}: {exc}")
        assert finished is not None
        self.ledger_changed.emit()
        self.batch_finished.emit(finished)

    @Slot(str, str, object)
    def record_event(self, kind: str, summary: str, details: object) -> None:
        """Append an event to the ledger's event log (model thread)."""
        ledger = self._require_ledger()
        if ledger is None:
            return
        try:
            record_event(ledger.db, kind, summary, details if isinstance(details, dict) else {})
        except StillroomError as exc:
            self.failed.emit("The event could not be logged", str(exc))

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
