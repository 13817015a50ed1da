"""ModelHost: one thread that owns the Runner and a ledger connection; others queue work on it.

llama.cpp models are not thread-safe, so the server (and anything else that serves many callers)
submits jobs here. A job may name the registered model it needs (by sha256): the host thread then
closes the loaded model and loads that one first (switch_model), so one model is loaded at a time. Each job's events (TokenChunk..., then LoggedGeneration, or an exception) come
back through the job's own queue, so the host thread never waits on a slow consumer. A consumer
that goes away cancels its job's token; the generation then stops within one token and is logged
as cancelled. An embedding job (an EmbeddingRequest on an embedding GGUF, loaded with
embedding=True) yields one LoggedEmbedding.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from app.core.cancel import CancelToken
from app.core.embedding import EmbeddingRequest, EmbeddingResult, LoggedEmbedding, embed_logged
from app.core.errors import ModelFileError, StillroomError
from app.core.generation import LogContext, LoggedGeneration, generate_logged
from app.core.models.bundled import bundled_by_alias, register_bundled
from app.core.models.embedding_model import is_embedding_model
from app.core.models.memory import check_fits
from app.core.models.registry import find_model, register_model
from app.core.models.resolve import resolve_model
from app.core.models.runner import LoadedModel, LoadOptions, Runner, TokenChunk
from app.core.models.sampling import GenerationRequest
from app.core.store import Ledger

LOG = logging.getLogger("stillroom.serve")
MAX_QUEUED_JOBS = 256
_DONE = object()


class HostBusyError(StillroomError):
    """Too many requests are waiting for the model."""


@dataclass
class Job:
    """A generation waiting for, or running on, the model thread."""

    request: GenerationRequest | EmbeddingRequest
    context: LogContext
    cancel: CancelToken = field(default_factory=CancelToken)
    events: queue.Queue[object] = field(default_factory=queue.Queue)
    # the model to run it on: a registered model's sha256 or a bundled alias ('chat', 'default');
    # None: whichever is loaded
    model: str | None = None

    def stream(self) -> Iterator[TokenChunk | LoggedGeneration | LoggedEmbedding]:
        """Yield the job's events on the caller's thread; re-raises the job's error, if any."""
        while True:
            item = self.events.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]


class ModelHost:
    """Owns a Runner and a Ledger on one thread and runs queued jobs one after another."""

    def __init__(self, ledger_path: Path, model_ref: str | None, options: LoadOptions = LoadOptions()) -> None:
        self._ledger_path = ledger_path
        self._model_ref = model_ref
        self._options = options
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._runner = Runner()
        self._thread = threading.Thread(target=self._run, name="stillroom-model-host", daemon=True)

    @property
    def loaded(self) -> LoadedModel:
        """The model loaded now (after start(); a job for another model switches it)."""
        loaded = self._runner.loaded
        assert loaded is not None
        return loaded

    def start(self) -> LoadedModel:
        """Start the thread, load the model, and return it; raises the load error if it fails."""
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise self._startup_error
        return self.loaded

    def submit(self, request: GenerationRequest | EmbeddingRequest, context: LogContext,
               model_sha256: str | None = None) -> Job:
        """Queue a generation or an embedding request on the registered model `model_sha256` (None:
        the loaded one); its events arrive through the returned Job."""
        if self._jobs.qsize() >= MAX_QUEUED_JOBS:
            raise HostBusyError(f"{MAX_QUEUED_JOBS} requests are already waiting for the model; try again later")
        job = Job(request, context, model=model_sha256)
        self._jobs.put(job)
        return job

    def stop(self) -> None:
        """Finish the running job, refuse the rest, unload the model and end the thread."""
        if not self._thread.is_alive():
            return
        self._jobs.put(None)
        self._thread.join(timeout=60)

    def _run(self) -> None:
        ledger: Ledger | None = None
        runner = self._runner
        try:
            ledger = Ledger.open(self._ledger_path)
            options = self._options
            register_bundled(ledger.db)
            record = resolve_model(ledger.db, self._model_ref,
                                   lambda info: check_fits(info, options.n_ctx, options.n_gpu_layers))
            runner.load(record.sha256, record.info, options)
        except BaseException as exc:  # noqa: BLE001 - reported to start()'s caller
            self._startup_error = exc
            self._ready.set()
            if ledger is not None:
                ledger.close()
            return
        self._ready.set()
        try:
            while (job := self._jobs.get()) is not None:
                serve_job(runner, ledger, job)
            while not self._jobs.empty():  # refuse what is still queued
                leftover = self._jobs.get_nowait()
                if leftover is not None:
                    fail_job(leftover, HostBusyError("the server is shutting down"))
        finally:
            runner.unload()
            ledger.close()


def fail_job(job: Job, error: BaseException) -> None:
    """End a job that cannot run: its consumer gets `error`, then the done sentinel."""
    job.events.put(error)
    job.events.put(_DONE)


def serve_job(runner: Runner, ledger: Ledger, job: Job) -> None:
    """Run one job on the thread that owns `runner` and `ledger`: each event of generate_logged goes
    into `job.events` (an exception too), always followed by the done sentinel. A job cancelled
    before it starts only gets the sentinel."""
    try:
        if job.cancel.cancelled:
            return
        if job.model is not None:
            switch_model(runner, ledger, job.model)
        if isinstance(job.request, EmbeddingRequest):
            loaded = runner.loaded
            job.events.put(embed_logged(lambda texts: runner_embeddings(runner, texts), ledger, job.request,
                                        job.context, model_sha256=loaded.sha256 if loaded else None,
                                        model_name=loaded.info.name if loaded else None))
            return
        for item in generate_logged(runner, ledger, job.request, job.context, job.cancel):
            job.events.put(item)
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer
        job.events.put(exc)
    finally:
        job.events.put(_DONE)


def switch_model(runner: Runner, ledger: Ledger, model: str) -> bool:
    """Make `model` (a registered model's sha256, or a bundled alias: 'chat', 'default') the loaded
    one, on the runner's thread, with the load options of the model it replaces (chat format back
    to 'auto'). Returns whether it switched. Raises ModelFileError when the file is gone or no
    longer has that sha256."""
    loaded = runner.loaded
    options = replace(loaded.options, chat_format="auto") if loaded is not None else LoadOptions()
    fits = lambda info: check_fits(info, options.n_ctx, options.n_gpu_layers)  # noqa: E731
    if bundled_by_alias(model) is not None:
        record = resolve_model(ledger.db, model, fits)
        sha256 = record.sha256
    else:
        sha256 = model
        if loaded is not None and loaded.sha256 == sha256:
            return False
        row = find_model(ledger.db, sha256)
        record = register_model(ledger.db, row["path"], fits)
    if loaded is not None and loaded.sha256 == record.sha256:
        return False
    if record.sha256 != sha256:
        raise ModelFileError(f"{record.info.path} has changed since it was registered (sha256 {record.short_sha}, "
                             f"expected {sha256[:12]})")
    LOG.info("switching model: %s -> %s (%s)", loaded.info.name if loaded else "none", record.info.name,
             record.short_sha)
    embedding = is_embedding_model(record.info.architecture, record.info.metadata)
    runner.load(record.sha256, record.info, replace(options, embedding=embedding))
    return True


def runner_embeddings(runner: Runner, texts: list[str]) -> EmbeddingResult:
    """The loaded embedding model's vectors for `texts`, as an EmbeddingResult (model thread)."""
    loaded = runner.loaded
    output = runner.embed(texts)
    return EmbeddingResult(np.asarray(output.vectors, dtype=np.float32).reshape(len(texts), -1),
                           sum(output.token_counts), loaded.sha256 if loaded else None,
                           loaded.info.name if loaded else None, output.runtime)
