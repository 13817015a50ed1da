"""The OpenAI chat and completions handler: an already-parsed request body in, OpenAI's response out.

This is the one place a request becomes jobs on the model and ledger rows, so every endpoint that
translates another API (Responses, Anthropic Messages) into a chat-completions body calls
`start_openai` too and gets the same runner, tool calling and logging. It knows nothing of HTTP: the
server writes the response as JSON or the chunks as server-sent events.

    started = start_openai(server, "chat", body, Caller(workflow="w", endpoint="/v1/messages"))
    started.response()            # a chat.completion dict, or
    for chunk in started.chunks(): # chat.completion.chunk dicts (usage last when asked)
        ...

Errors are ApiError. chunks() raises before its first chunk for anything that goes wrong before an
answer starts (so the server can still answer with a 4xx), and mid-stream afterwards. Call cancel()
when the client goes away: the generations stop within a token and are logged as cancelled.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from app import __version__
from app.core.errors import ContextLengthError, LedgerError, StillroomError
from app.core.generation import LogContext, LoggedGeneration
from app.core.log_excerpt import bounded_value
from app.core.models.bundled import model_sampling
from app.core.models.runner import TokenChunk
from app.core.serve.catalog import ServedModel
from app.core.serve.model_host import Job, ModelHost
from app.core.serve.openai_api import ApiError, ParsedRequest, chat_logprobs, finish_reason, new_id, now
from app.core.serve.openai_api import parse_chat, parse_completion
from app.core.tools.calls import ToolOutcome, looks_like_call, may_become_call

FINGERPRINT = f"stillroom-{__version__}"
MAX_LOGGED_EXTRAS_CHARS = 4096  # of the unknown request fields kept in the row's meta
ARGUMENT_PIECE_CHARS = 32  # a streamed tool call's arguments come in pieces of this size
PARSERS = {"chat": parse_chat, "completions": parse_completion}


class ModelServer(Protocol):
    """What the handler needs of the server (StillroomServer): the model a body names, and the
    model thread to queue jobs on."""

    model_host: ModelHost

    def pick_model(self, body: Any, endpoint: str) -> ServedModel | None:
        """The registered model `body` names; ApiError 404 for an unknown one."""


@dataclass(frozen=True)
class Caller:
    """Who asks and through which endpoint: what the ledger row records besides the request.
    `meta` is merged into the row's meta.server (a translating endpoint's own notes)."""

    workflow: str
    endpoint: str
    api_key: str | None = None
    client: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def api_error(exc: Exception) -> ApiError:
    """A failed generation as the client sees it: its request's fault (400), or the ledger's (503:
    locked by another program, read-only, disk full; the server cannot log, so it does not answer)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ContextLengthError):
        return ApiError(400, str(exc), "messages", "context_length_exceeded")
    if isinstance(exc, LedgerError):
        return ApiError(503, f"the generation could not be logged: {exc}", None, "ledger_unavailable", "server_error")
    return ApiError(400, str(exc), None, "invalid_request")


def tool_error(final: LoggedGeneration, parsed: ParsedRequest) -> ApiError:
    """An answer whose tool call failed (logged as an error row): 422, with what the client can do."""
    assert final.tools is not None and final.tools.error is not None
    if final.result.finish_reason == "length":
        hint = "raise max_tokens, or set parallel_tool_calls to false so the model makes one call"
    elif parsed.tools is not None and not parsed.tools.must_call:
        hint = ("retry, or send tool_choice 'required' or a named function, which constrains the answer to the "
                "tools' schemas")
    else:
        hint = "retry with another seed; the schema has rules a grammar cannot enforce (bounds, formats)"
    return ApiError(422, f"{final.tools.error}. The answer is logged as generation {final.generation_id}; {hint}",
                    "tools", "invalid_tool_call")


def start_openai(server: ModelServer, kind: str, body: Any, caller: Caller) -> Started:
    """Parse `body` (a chat-completions body for kind 'chat', a completions body for 'completions'),
    pick its model and queue one job per choice. Raises ApiError for a request it refuses."""
    chosen = server.pick_model(body, kind)
    parsed = PARSERS[kind](body, model_sampling(chosen.file_name) if chosen else None)
    assert chosen is not None  # the parser refused a body without a model
    request_id = new_id("chatcmpl" if kind == "chat" else "cmpl")
    jobs = []
    for index, choice in enumerate(parsed.choices):
        meta = {"server": {"endpoint": caller.endpoint, "request_id": request_id, "choice": index,
                           "n": len(parsed.choices), "api_key": caller.api_key, "client": caller.client,
                           "stream": parsed.stream,
                           "extras": bounded_value(parsed.extras, MAX_LOGGED_EXTRAS_CHARS) or None} | caller.meta}
        jobs.append(server.model_host.submit(choice, LogContext("server", workflow=caller.workflow, meta=meta),
                                             chosen.sha256))
    return Started(parsed, jobs, request_id, chosen.id)


@dataclass
class Started:
    """A request whose generations are queued: read it once, whole (response) or in chunks."""

    parsed: ParsedRequest
    jobs: list[Job]
    request_id: str
    model_id: str

    @property
    def stream(self) -> bool:
        """Whether the client asked for a stream."""
        return self.parsed.stream

    def cancel(self) -> None:
        """Stop every generation of the request (each is logged as cancelled)."""
        for job in self.jobs:
            job.cancel.cancel()

    def response(self) -> dict[str, Any]:
        """The whole answer: a chat.completion or text_completion object."""
        parsed = self.parsed
        finals = [_collect(job, parsed) for job in self.jobs]
        choices = []
        for index, final in enumerate(finals):
            result = final.result
            reason = finish_reason(result.finish_reason)
            if parsed.endpoint == "chat":
                message: dict[str, Any] = {"role": "assistant", "content": result.text}
                if final.tools is not None and final.tools.calls:
                    message = {"role": "assistant", "content": None,
                               "tool_calls": [call.as_openai() for call in final.tools.calls]}
                choices.append({"index": index, "message": message,
                                "logprobs": chat_logprobs(result.logprobs) if parsed.logprobs else None,
                                "finish_reason": reason})
            else:
                choices.append({"index": index, "text": result.text,
                                "logprobs": result.logprobs if parsed.logprobs else None, "finish_reason": reason})
        return {"id": self.request_id, "object": "chat.completion" if parsed.endpoint == "chat" else "text_completion",
                "created": now(), "model": self.model_id, "system_fingerprint": FINGERPRINT, "choices": choices,
                "usage": _usage(finals), "stillroom": {"generation_ids": [f.generation_id for f in finals],
                                                       "stop_sequences": [_stop_sequence(f) for f in finals]}}

    def chunks(self) -> Iterator[dict[str, Any]]:
        """The answer as chat.completion.chunk (or text_completion) objects, choice after choice;
        a last chunk with the usage when the request asked for it (stream_options.include_usage)."""
        finals: list[LoggedGeneration] = []
        for index, job in enumerate(self.jobs):
            choice = _ChoiceStream(self, index, finals)
            for delta in choice.run(job):
                yield delta
        if self.parsed.include_usage:
            yield {"id": self.request_id, "object": self._kind(), "created": now(), "model": self.model_id,
                   "choices": [], "usage": _usage(finals)}

    def _kind(self) -> str:
        return "chat.completion.chunk" if self.parsed.endpoint == "chat" else "text_completion"

    def chunk(self, index: int, delta: Any, reason: str | None = None, logprobs: Any = None) -> dict[str, Any]:
        """One streamed chunk of choice `index`."""
        choice: dict[str, Any] = {"index": index, "finish_reason": reason}
        if self.parsed.endpoint == "chat":
            choice["delta"] = delta
            choice["logprobs"] = chat_logprobs(logprobs) if logprobs else None
        else:
            choice["text"] = delta
            choice["logprobs"] = logprobs
        return {"id": self.request_id, "object": self._kind(), "created": now(), "model": self.model_id,
                "system_fingerprint": FINGERPRINT, "choices": [choice]}


class _ChoiceStream:
    """One choice's chunks. Text streams token by token; an answer that is (or may be) a tool call is
    held back until the generation ends and its calls are read and checked, then sent as OpenAI's
    delta.tool_calls (id and name first, then the arguments in pieces)."""

    def __init__(self, started: Started, index: int, finals: list[LoggedGeneration]) -> None:
        self.started, self.index, self.finals = started, index, finals
        self.chat = started.parsed.endpoint == "chat"
        tools = started.parsed.tools
        self.tools = tools if self.chat and tools is not None and tools.callable else None
        self.role_sent = False

    def _open(self) -> Iterator[dict[str, Any]]:
        if self.chat and not self.role_sent:
            self.role_sent = True
            yield self.started.chunk(self.index, {"role": "assistant", "content": ""})

    def _text(self, text: str, logprobs: Any) -> Iterator[dict[str, Any]]:
        yield from self._open()
        yield self.started.chunk(self.index, {"content": text} if self.chat else text, None, logprobs)

    def run(self, job: Job) -> Iterator[dict[str, Any]]:
        held: list[TokenChunk] = []  # text that may still turn out to be a tool call
        deciding = self.tools is not None
        wants_logprobs = self.started.parsed.logprobs
        try:
            for item in job.stream():
                if isinstance(item, TokenChunk):
                    logprobs = item.logprobs if wants_logprobs else None
                    if not deciding:
                        yield from self._text(item.text, logprobs)
                        continue
                    held.append(item)
                    text = "".join(h.text for h in held)
                    assert self.tools is not None
                    if self.tools.must_call or looks_like_call(text) or may_become_call(text):
                        continue
                    deciding = False  # prose: send what was held, then stream
                    for chunk in held:
                        yield from self._text(chunk.text, chunk.logprobs if wants_logprobs else None)
                    held = []
                elif isinstance(item, LoggedGeneration):
                    yield from self._finish(item, held)
        except (StillroomError, ValueError) as exc:
            raise api_error(exc) from exc

    def _finish(self, final: LoggedGeneration, held: list[TokenChunk]) -> Iterator[dict[str, Any]]:
        self.finals.append(final)
        outcome: ToolOutcome | None = final.tools
        if outcome is not None and outcome.error is not None:
            raise tool_error(final, self.started.parsed)
        if final.result.status == "error":
            raise ApiError(500, f"generation failed: {final.result.error}", None, "generation_failed", "server_error")
        if outcome is not None and outcome.calls:
            if not self.role_sent:
                self.role_sent = True
                yield self.started.chunk(self.index, {"role": "assistant", "content": None})
            for position, call in enumerate(outcome.calls):
                yield self.started.chunk(self.index, {"tool_calls": [
                    {"index": position, "id": call.id, "type": "function",
                     "function": {"name": call.name, "arguments": ""}}]})
                for start in range(0, len(call.arguments), ARGUMENT_PIECE_CHARS):
                    piece = call.arguments[start:start + ARGUMENT_PIECE_CHARS]
                    yield self.started.chunk(self.index, {"tool_calls": [{"index": position,
                                                                          "function": {"arguments": piece}}]})
        else:
            for chunk in held:
                yield from self._text(chunk.text, chunk.logprobs if self.started.parsed.logprobs else None)
            yield from self._open()
        reason = finish_reason(final.result.finish_reason)
        last = self.started.chunk(self.index, {} if self.chat else "", reason)
        if (stop := _stop_sequence(final)) is not None:
            last["stillroom"] = {"stop_sequence": stop}  # which of the request's stop strings ended the answer
        yield last


def _collect(job: Job, parsed: ParsedRequest) -> LoggedGeneration:
    final = None
    try:
        for item in job.stream():
            if isinstance(item, LoggedGeneration):
                final = item
    except (StillroomError, ValueError) as exc:
        raise api_error(exc) from exc
    assert final is not None
    if final.tools is not None and final.tools.error is not None:
        raise tool_error(final, parsed)
    if final.result.status == "error":
        raise ApiError(500, f"generation failed: {final.result.error}", None, "generation_failed", "server_error")
    return final


def _stop_sequence(final: LoggedGeneration) -> str | None:
    """The request's stop string that ended the answer, if one did (Anthropic's stop_sequence)."""
    return final.result.runtime.get("stop_sequence")


def _usage(finals: list[LoggedGeneration]) -> dict[str, int]:
    prompt = finals[0].result.prompt_tokens if finals else 0
    completion = sum(f.result.completion_tokens for f in finals)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
