"""Running a batch job: a generator that yields progress, returns how the run ended, and can be
paused or cancelled.

Resumable by construction: the ledger is the record of what is done. Before running, the output
file is rewritten from the ledger's rows for the job (so a line lost to a crash between the commit
and the write comes back, and no line appears twice); then every (item, sample) not yet done is
generated, committed, and appended to the output as it finishes.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.batch.jobs import done_keys, done_rows, get_job, output_line, set_status
from app.core.cancel import CancelToken
from app.core.errors import LedgerError
from app.core.generation import LogContext, LoggedGeneration, run_to_end
from app.core.models.runner import Runner
from app.core.models.sampling import GenerationRequest
from app.core.outfiles import replace_file
from app.core.progress import Progress
from app.core.store import Ledger

STAGE = "generating"


@dataclass
class BatchControl:
    """Pause takes effect between generations; cancel stops the running generation too."""

    cancel: CancelToken = field(default_factory=CancelToken)
    _pause: threading.Event = field(default_factory=threading.Event)

    def pause(self) -> None:
        """Stop after the generation in progress; the job can be resumed."""
        self._pause.set()

    @property
    def paused(self) -> bool:
        """True once pause() was called."""
        return self._pause.is_set()


@dataclass(frozen=True, kw_only=True)
class BatchProgress(Progress):
    """Yielded after each generation (stage 'generating'): counts, speed and the estimated time left."""

    job_id: int
    tokens_per_s: float | None
    eta_s: float | None
    last_prompt: str
    last_response: str
    last_ledger_id: int | None


@dataclass(frozen=True)
class BatchFinished:
    """What run_batch returns: the job's status (done, paused, cancelled, failed)."""

    job_id: int
    status: str
    done: int
    total: int
    error: str | None = None


def _rewrite_output(ledger: Ledger, job_id: int, path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with replace_file(path) as handle:  # owner-only: it holds prompts and responses
        for row in done_rows(ledger.db, job_id):
            handle.write(output_line(row) + "\n")
            count += 1
    return count


def run_batch(ledger: Ledger, runner: Runner, job_id: int,
              control: BatchControl | None = None) -> Generator[BatchProgress, None, BatchFinished]:
    """Run (or resume) job `job_id` on the runner's owner thread, yielding BatchProgress after each
    generation; returns how the run ended (also when paused or cancelled)."""
    control = control or BatchControl()
    job = get_job(ledger.db, job_id)
    spec = job.spec
    output = Path(job.output_path)
    done = done_keys(ledger.db, job_id)
    _rewrite_output(ledger, job_id, output)
    set_status(ledger.db, job_id, "running")
    tokens, seconds, count = 0, 0.0, len(done)
    status, error = "done", None
    try:
        with output.open("a", encoding="utf-8") as handle:
            for index, item in enumerate(spec.items):
                for sample in range(spec.samples):
                    if (index, sample) in done:
                        continue
                    if control.cancel.cancelled:
                        status = "cancelled"
                        break
                    if control.paused:
                        status = "paused"
                        break
                    prompt = spec.render(item)
                    params = spec.sampling(index, sample)
                    if spec.mode == "chat":
                        request = GenerationRequest("chat", messages=[{"role": "user", "content": prompt}],
                                                    system_prompt=spec.system, params=params)
                    else:
                        request = GenerationRequest("completion", prompt=prompt, params=params)
                    context = LogContext("batch", workflow=spec.workflow, meta={
                        "batch": {"job": job_id, "name": spec.name, "item": index, "sample": sample,
                                  "inputs": item, "template_sha256": job.spec.sha256()}})
                    started = time.perf_counter()
                    final = run_to_end(runner, ledger, request, context, control.cancel)
                    if final.result.status != "ok":
                        status = "cancelled" if final.result.status == "cancelled" else "failed"
                        error = final.result.error
                        break
                    handle.write(output_line(_row_view(final, request, context, runner)) + "\n")
                    handle.flush()
                    count += 1
                    tokens += final.result.completion_tokens
                    seconds += time.perf_counter() - started
                    rate = tokens / seconds if seconds > 0 else None
                    per_item = seconds / max(1, count - len(done))
                    yield BatchProgress(STAGE, count, job.total, job_id=job_id, tokens_per_s=rate,
                                        eta_s=per_item * (job.total - count), last_prompt=prompt,
                                        last_response=final.result.text, last_ledger_id=final.generation_id)
                else:
                    continue
                break
    except BaseException as exc:
        interrupted = isinstance(exc, (KeyboardInterrupt, GeneratorExit))
        # When the ledger itself failed (locked, full), recording the status fails too: report the first error.
        with contextlib.suppress(LedgerError):
            set_status(ledger.db, job_id, "paused" if interrupted else "failed", None if interrupted else str(exc))
        raise
    set_status(ledger.db, job_id, status, error)
    return BatchFinished(job_id, status, count, job.total, error)


def _row_view(final: LoggedGeneration, request: GenerationRequest, context: LogContext,
              runner: Runner) -> dict[str, Any]:
    """The fields output_line() needs, without reading the row back from the database."""
    loaded = runner.loaded
    return {"id": final.generation_id, "prompt": request.prompt_text(), "response": final.result.text,
            "seed": final.result.seed, "model_sha256": loaded.sha256 if loaded else None, "meta": context.meta}
