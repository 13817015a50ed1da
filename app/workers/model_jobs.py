"""The window's model-thread operations, each a function of ModelState run by ModelWorker.

ModelService binds their arguments and submits them (`functools.partial(load_model, ref=...)`).
They run on the model thread, so they may use `state.runner` and `state.ledger` freely; what other
widgets must hear goes out through `state.announce`, a job's own stream (tokens, batch progress)
through `state.progress`, and its outcome is the return value or the exception raised.
Everything here calls the same core paths as the command line (generate_logged, run_batch,
serve_job).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from app.core.batch.jobs import create_job
from app.core.batch.run import BatchControl, BatchFinished, BatchProgress, run_batch
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
from app.core.models.llama_binding import gpu_offload_supported
from app.core.models.runner import GenerationResult, LoadedModel, LoadOptions
from app.core.models.sampling import GenerationRequest
from app.core.progress import drive
from app.core.serve.model_host import Job, fail_job, serve_job
from app.core.store import Ledger
from app.core.store.conversations import Conversation, rename_conversation, save_conversation
from app.core.store.events import record_event
from app.core.store.ledger import utc_now
from app.workers.model_worker import Broadcast, ModelState

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatOutcome:
    """A finished turn (ok, cancelled or error), after its ledger row was committed."""

    conversation_id: str
    generation_id: int
    result: GenerationResult
    model_name: str | None


def open_ledger(state: ModelState, path: str) -> str:
    """Open the ledger this thread writes through; returns its path."""
    state.ledger = Ledger.open(path)
    return path


def add_models(state: ModelState, paths: list[str], options: LoadOptions) -> None:
    """Register GGUF files; one too large to load with `options` is refused before hashing. A file
    that cannot be used is announced as `failed` and the others are still registered."""
    ledger = state.require_ledger()

    def fits(info: GGUFInfo) -> None:
        check_fits(info, options.n_ctx, options.n_gpu_layers)

    try:
        for path in paths:
            state.announce(Broadcast.BUSY, f"Reading {Path(path).name}…")
            try:
                register_model(ledger.db, path, precheck=fits)
            except StillroomError as exc:
                state.announce(Broadcast.FAILED, "This model file cannot be used", str(exc))
            except OSError as exc:
                state.announce(Broadcast.FAILED, "This model file cannot be read", f"{path}: {exc.strerror or exc}")
            else:
                state.announce(Broadcast.MODELS_CHANGED)
    finally:
        state.announce(Broadcast.BUSY, "")


def load_model(state: ModelState, ref: str | None, options: LoadOptions,
               fall_back_to_default: bool = False) -> LoadedModel | None:
    """Load a model by sha256 (None: the bundled chat model, after registering both bundled
    models, which assembles Gemma on first use); returns it, or None when it could not be loaded
    (announced as `failed`, and the bundled model is tried when `fall_back_to_default`)."""
    ledger = state.require_ledger()
    runner = state.runner
    try:
        state.announce(Broadcast.BUSY,
                       "Preparing the bundled models…" if ref is None else "Reading the model file…")
        try:
            if ref is None:
                register_bundled(ledger.db)
            record = resolve_model(ledger.db, CHAT_ALIAS) if ref is None else \
                register_model(ledger.db, find_model(ledger.db, ref)["path"])
            state.announce(Broadcast.MODELS_CHANGED)
            state.announce(Broadcast.BUSY, f"Loading {record.info.name}…")
            loaded = runner.load(record.sha256, record.info, options)
        except StillroomError as exc:
            if runner.loaded is None:  # a failed llama.cpp load has closed the old model
                state.announce(Broadcast.MODEL_UNLOADED)
            state.announce(Broadcast.FAILED, "The model could not be loaded", str(exc))
            if ref is not None and fall_back_to_default:
                return load_model(state, None, options)
            return None
        state.announce(Broadcast.MODEL_LOADED, loaded)
        state.announce(Broadcast.GPU_OFFLOAD, gpu_offload_supported())
        return loaded
    finally:
        state.announce(Broadcast.BUSY, "")


def unload_model(state: ModelState) -> None:
    """Free the loaded model."""
    state.runner.unload()
    state.announce(Broadcast.MODEL_UNLOADED)


def chat_turn(state: ModelState, conversation: Conversation, request: GenerationRequest,
              context: LogContext, cancel: CancelToken) -> ChatOutcome:
    """Save the conversation record, then stream the turn through generate_logged: each token's
    text is this job's progress. A turn that could not run raises StillroomError with the reason
    (a failure inside llama.cpp is logged as an error row first, and named by its type)."""
    ledger = state.require_ledger()
    loaded = state.runner.loaded
    try:
        conversation = replace(conversation, updated_at=utc_now(),
                               model_sha256=loaded.sha256 if loaded else conversation.model_sha256)
        save_conversation(ledger.db, conversation)
        final: LoggedGeneration | None = None
        for item in generate_logged(state.runner, ledger, request, context, cancel):
            if isinstance(item, LoggedGeneration):
                final = item
            else:
                state.progress(item.text)
    except StillroomError:
        state.announce(Broadcast.LEDGER_CHANGED)
        raise
    except Exception as exc:  # noqa: BLE001 - llama.cpp failures are logged as error rows
        LOG.exception("chat turn failed")
        state.announce(Broadcast.LEDGER_CHANGED)
        raise StillroomError(f"{type(exc).__name__}: {exc}") from exc
    assert final is not None
    state.announce(Broadcast.LEDGER_CHANGED)
    return ChatOutcome(conversation.id, final.generation_id, final.result, loaded.info.name if loaded else None)


def serve(state: ModelState, job: Job) -> None:
    """Run one server or lab request (see app.core.serve.model_host.serve_job): its events go to the
    job's queue, read by the thread that submitted it. A request for another model loads that one
    first, and the switch is announced."""
    before = state.runner.loaded
    if state.ledger is None:
        fail_job(job, StillroomError("the ledger is not open"))
    else:
        serve_job(state.runner, state.ledger, job)
    after = state.runner.loaded
    if after is not before:  # the request named another model: the window shows the switch
        if after is None:
            state.announce(Broadcast.MODEL_UNLOADED)
        else:
            state.announce(Broadcast.MODEL_LOADED, after)
    state.announce(Broadcast.LEDGER_CHANGED)


def create_batch(state: ModelState, spec: BatchSpec) -> int:
    """Store a new batch job; returns its id."""
    return create_job(state.require_ledger().db, spec).id


def run_stored_batch(state: ModelState, job_id: int, control: BatchControl) -> BatchFinished:
    """Run (or resume) a stored batch job: each BatchProgress is this job's progress; returns how
    the run stopped (done, paused, cancelled or failed: a failure is the result, not an error).
    Pause and cancel come through `control` from the UI thread."""
    ledger = state.require_ledger()
    if state.runner.loaded is None:
        return BatchFinished(job_id, "failed", 0, 0, "no model is loaded")

    def on_progress(progress: BatchProgress) -> None:
        state.progress(progress)
        state.announce(Broadcast.LEDGER_CHANGED)

    try:
        finished = drive(run_batch(ledger, state.runner, job_id, control), on_progress)
    except Exception as exc:  # noqa: BLE001 - reported as a failed run (run_batch stored the status)
        LOG.exception("batch run failed")
        finished = BatchFinished(job_id, "failed", 0, 0, f"{type(exc).__name__}: {exc}")
    state.announce(Broadcast.LEDGER_CHANGED)
    return finished


def log_event(state: ModelState, kind: str, summary: str, details: dict) -> None:
    """Append an event to the ledger's event log."""
    record_event(state.require_ledger().db, kind, summary, details)


def rename(state: ModelState, conversation_id: str, title: str) -> None:
    """Store a new title for a conversation."""
    rename_conversation(state.require_ledger().db, conversation_id, title)
    state.announce(Broadcast.LEDGER_CHANGED)
