"""The lab's teacher calls in the desktop app: generations run on the model thread, in order with
chat turns, batch runs and server requests, through ModelService.serve (generate_logged, the same
logged path as everywhere else).

ServiceGenerate is created on the UI thread and called from the lab's worker thread: each call
queues a Job to the model thread and blocks until its ledger row is committed. The teacher is the
bundled Gemma 3 270M (the default completion model): the model thread loads it in place of the
window's model for the first call if another is loaded. The lab's cancel
token is the job's token, so cancelling the step stops the running generation within one token
(it is logged as cancelled) and skips a job that has not started.
"""

from __future__ import annotations

from app.core.cancel import CancelToken
from app.core.generation import LogContext, LoggedGeneration
from app.core.models.bundled import bundled_by_alias
from app.core.models.default_model import DEFAULT_ALIAS
from app.core.models.sampling import GenerationRequest
from app.core.serve.model_host import Job
from app.workers.model_service import ModelService


TEACHER_MODEL = DEFAULT_ALIAS
TEACHER_TITLE = bundled_by_alias(TEACHER_MODEL).title  # type: ignore[union-attr] - always bundled


class ServiceGenerate:
    """A lab Generate backed by the window's model thread."""

    def __init__(self, service: ModelService) -> None:
        self._service = service

    def __call__(self, request: GenerationRequest, context: LogContext,
                 cancel: CancelToken) -> LoggedGeneration | None:
        """Run one generation on the model thread and wait for it (a worker thread, never the UI
        thread or the model thread); None when it was cancelled before it started."""
        job = Job(request, context, cancel, model=TEACHER_MODEL)
        self._service.serve(job)
        final: LoggedGeneration | None = None
        for item in job.stream():
            if isinstance(item, LoggedGeneration):
                final = item
        return final
