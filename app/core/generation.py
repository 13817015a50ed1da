"""Generate and log: every path (chat, CLI, batch, server, lab) runs a request through here.

generate_logged() streams the runner's tokens to the caller and, when the generation ends, for
whatever reason, commits one ledger row: ok, cancelled (with the partial text) or error (with the
message). Nothing is written before the end, so a killed process leaves no half-written row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from app.core.cancel import NEVER, CancelToken
from app.core.errors import ContextLengthError, ModelNotLoadedError
from app.core.log_excerpt import bound_unserved_request
from app.core.models.runner import GenerationResult, Runner, TokenChunk
from app.core.models.sampling import GenerationRequest
from app.core.store.ledger import Ledger, utc_now
from app.core.tools.calls import ToolOutcome, read_answer
from app.core.tools.history import call_count


@dataclass(frozen=True)
class LogContext:
    """Where a generation comes from and what it belongs to."""

    source: str
    workflow: str | None = None
    conversation_id: str | None = None
    parent_id: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoggedGeneration:
    """The last item generate_logged() yields: the ledger row id and the runner's result, and for a
    request that offered tools, what the answer amounts to (text, calls or an error)."""

    generation_id: int
    result: GenerationResult
    tools: ToolOutcome | None = None


def tool_meta(request: GenerationRequest, outcome: ToolOutcome | None) -> dict[str, Any] | None:
    """The row's `meta.tools`: the tools a request carried (definitions included), the calls and
    results in its history, and the calls its answer made; None for a request without tools."""
    if request.mode != "chat" or not request.uses_tools():
        return None
    history_calls, results = call_count(request.messages or [])
    summary = request.tools.summary() if request.tools is not None else {"offered": 0}
    summary |= {"history_calls": history_calls, "results": results, "calls": 0}
    if outcome is not None:
        summary |= outcome.summary()
    return summary


def _with_tools(request: GenerationRequest, result: GenerationResult) -> tuple[GenerationResult, ToolOutcome | None]:
    """Read a finished answer's tool calls; an answer that fails them becomes an error result."""
    if request.tools is None or result.status != "ok":
        return result, None
    outcome = read_answer(request.tools, result.text, result.finish_reason)
    if outcome.error is not None:
        result = replace(result, status="error", error=outcome.error)
    elif outcome.calls:
        result = replace(result, finish_reason="tool_calls")
    return result, outcome


def build_row(request: GenerationRequest, result: GenerationResult, context: LogContext, runner: Runner,
              started_at: str, finished_at: str, outcome: ToolOutcome | None = None) -> dict[str, Any]:
    """The ledger row for a finished (or cancelled, or failed) generation."""
    loaded = runner.loaded
    tools = tool_meta(request, outcome)
    return {
        "started_at": started_at,
        "finished_at": finished_at,
        "source": context.source,
        "workflow": context.workflow,
        "conversation_id": context.conversation_id,
        "parent_id": context.parent_id,
        "model_sha256": loaded.sha256 if loaded else None,
        "model_name": loaded.info.name if loaded else None,
        "mode": request.mode,
        "chat_format": result.chat_format,
        "system_prompt": request.system_prompt,
        "prompt": request.prompt_text(),
        "messages": request.full_messages() if request.mode == "chat" else None,
        "params": result.params,
        "seed": result.seed,
        "logprobs_requested": int(request.params.logprobs is not None),
        "response": result.text,
        "finish_reason": result.finish_reason,
        "logprobs": result.logprobs,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "ttft_ms": result.ttft_ms,
        "duration_ms": result.duration_ms,
        "tokens_per_s": result.tokens_per_s,
        "status": result.status,
        "error": result.error,
        "runtime": result.runtime | {"rendered_prompt": result.rendered_prompt},
        "meta": (context.meta | {"tools": tools}) if tools else (context.meta or None),
    }


def generate_logged(runner: Runner, ledger: Ledger, request: GenerationRequest, context: LogContext,
                    cancel: CancelToken = NEVER) -> Iterator[TokenChunk | LoggedGeneration]:
    """Yield TokenChunk as text arrives, then one LoggedGeneration once the row is committed.

    Runs on the runner's owner thread. If the consumer stops iterating early, or the thread is
    interrupted (Ctrl+C), the partial generation is logged as cancelled before the exception
    propagates. Errors from llama.cpp during generation are logged as error rows.
    """
    started_at = utc_now()
    result: GenerationResult | None = None
    pieces: list[str] = []
    stream = runner.stream(request, cancel)
    try:
        for item in stream:
            if isinstance(item, TokenChunk):
                pieces.append(item.text)
                yield item
            else:
                result = item
    except BaseException as exc:
        stream.close()
        interrupted = isinstance(exc, (GeneratorExit, KeyboardInterrupt))
        if interrupted or not isinstance(exc, ModelNotLoadedError):
            failed = _interrupted_result(request, runner, "".join(pieces), None if interrupted else exc)
            row = build_row(request, failed, context, runner, started_at, utc_now())
            ledger.append(bound_unserved_request(row) if isinstance(exc, ContextLengthError) else row)
        raise
    assert result is not None
    result, outcome = _with_tools(request, result)
    generation_id = ledger.append(build_row(request, result, context, runner, started_at, utc_now(), outcome))
    yield LoggedGeneration(generation_id, result, outcome)


def _interrupted_result(request: GenerationRequest, runner: Runner, text: str,
                        error: BaseException | None) -> GenerationResult:
    """A result for a generation stopped from outside the runner's loop (cancelled when `error`
    is None, else failed with it)."""
    params = request.params.as_dict()
    try:
        completion_tokens = runner.count_tokens(text) if text else 0
    except Exception:  # noqa: BLE001 - a count is nice to have, the row is what matters
        completion_tokens = 0
    status = "cancelled" if error is None else "error"
    return GenerationResult(
        text=text, finish_reason=status, status=status, prompt_tokens=0,
        completion_tokens=completion_tokens, ttft_ms=None, duration_ms=0.0, tokens_per_s=None,
        seed=params.get("seed") or 0, params=params, rendered_prompt="", chat_format=None,
        error=None if error is None else str(error), runtime={"interrupted": True},
    )


def run_to_end(runner: Runner, ledger: Ledger, request: GenerationRequest, context: LogContext,
               cancel: CancelToken = NEVER) -> LoggedGeneration:
    """Run generate_logged() without streaming and return its LoggedGeneration."""
    final: LoggedGeneration | None = None
    for item in generate_logged(runner, ledger, request, context, cancel):
        if isinstance(item, LoggedGeneration):
            final = item
    assert final is not None
    return final
