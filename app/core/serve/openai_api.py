"""OpenAI request parsing and response shapes for /v1/completions and /v1/chat/completions.

parse_* turn a JSON body into GenerationRequests (one per choice, n of them) or raise ApiError with
the HTTP status, message, offending parameter and code that OpenAI's clients expect. Tools
(`tools`, `tool_choice`, `parallel_tool_calls`, assistant `tool_calls`, `tool` results) are taken
on the chat endpoint only and checked by app.core.tools.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from app.core.models.sampling import GenerationRequest, SamplingParams
from app.core.tools.grammar import check_convertible
from app.core.tools.history import assistant_calls, check_tool_results
from app.core.tools.spec import ToolError, ToolSpec, tool_spec

MAX_N = 16
MAX_STOP = 4
COMPLETION_DEFAULT_MAX_TOKENS = 16
CHAT_DEFAULT_MAX_TOKENS = 1 << 20  # until the context ends; the runner clamps it
KNOWN_KEYS = {
    "model", "prompt", "messages", "temperature", "top_p", "top_k", "min_p", "max_tokens",
    "max_completion_tokens", "stop", "seed", "n", "stream", "stream_options", "logprobs", "top_logprobs",
    "response_format", "presence_penalty", "frequency_penalty", "repeat_penalty", "user", "echo",
    "tools", "tool_choice", "parallel_tool_calls",
}
TOOL_KEYS = ("tools", "tool_choice", "parallel_tool_calls")
# Options that would change the answer in ways this server cannot do: refused (400) unless they carry
# a value that asks for nothing (an empty list, tool_choice "none", best_of 1...).
UNSUPPORTED_OPTIONS = {
    "tools": "tool calling outside /v1/chat/completions", "tool_choice": "tool calling outside /v1/chat/completions",
    "functions": "the legacy `functions` (send `tools` instead)",
    "function_call": "the legacy `function_call` (send `tool_choice` instead)", "logit_bias": "logit_bias",
    "best_of": "best_of above 1", "suffix": "suffix (text insertion)",
}
NEUTRAL_VALUES = {"tool_choice": ("none", "auto"), "function_call": ("none", "auto"), "best_of": (1,)}


class ApiError(Exception):
    """An error reported to the client as OpenAI's {"error": {...}} with an HTTP status."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def joined_text(content: Any, param: str, kinds: frozenset[str] | set[str], parts: str, note: str = "") -> str:
    """A string, or a list of text parts whose type is one of `kinds`, as one text (newline-joined);
    ApiError 400 naming the first part that is not text. `parts` names them as the API does
    ("text blocks", "input_text parts"); `note` is added to that error."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise ApiError(400, f"'{param}' must be a string or a list of {parts}", param, "invalid_type")
    noun = parts.split()[-1].removesuffix("s")
    texts = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in kinds or not isinstance(part.get("text"), str):
            shown = repr(kind) if isinstance(kind, str) else type(part).__name__
            raise ApiError(400, f"'{param}[{index}]' is a {shown} {noun}; only {parts} are supported{note}",
                           f"{param}[{index}]", "unsupported_content")
        texts.append(part["text"])
    return "\n".join(texts)


@dataclass
class ParsedRequest:
    """A validated request: one GenerationRequest per choice, and how to answer."""

    endpoint: str  # "completions" or "chat"
    model: str
    choices: list[GenerationRequest]
    stream: bool
    include_usage: bool
    logprobs: bool
    extras: dict[str, Any]
    tools: ToolSpec | None = None


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, f"'{key}' must be a number", key, "invalid_type")
    if not low <= value <= high:
        raise ApiError(400, f"'{key}' must be between {low} and {high}, got {value}", key, "invalid_value")
    return float(value)


def _integer(body: dict[str, Any], key: str, default: int | None, low: int, high: int) -> int | None:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"'{key}' must be an integer", key, "invalid_type")
    if not low <= value <= high:
        raise ApiError(400, f"'{key}' must be between {low} and {high}, got {value}", key, "invalid_value")
    return value


def _stop(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= MAX_STOP:
        return [s for s in stop if s]
    raise ApiError(400, f"'stop' must be a string or a list of at most {MAX_STOP} strings", "stop", "invalid_value")


def _response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("response_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise ApiError(400, "'response_format.type' must be text, json_object or json_schema",
                       "response_format", "invalid_value")
    if fmt["type"] == "json_schema" and not isinstance((fmt.get("json_schema") or {}).get("schema"), dict):
        raise ApiError(400, "'response_format.json_schema.schema' must be a JSON schema object",
                       "response_format", "invalid_value")
    return fmt


def _params(body: dict[str, Any], default_max: int, logprobs: int | None, seed: int | None,
            defaults: dict[str, Any] | None) -> SamplingParams:
    """The request's sampling; a knob it leaves out takes the model's default from `defaults`, else
    OpenAI's (temperature 1, top_p 1, no repeat penalty)."""
    own = defaults or {}
    max_tokens = _integer(body, "max_completion_tokens", None, 1, 1 << 20)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", default_max, 1, 1 << 20)
    return SamplingParams(
        temperature=_number(body, "temperature", own.get("temperature", 1.0), 0.0, 2.0),
        top_p=_number(body, "top_p", own.get("top_p", 1.0), 0.0, 1.0),
        top_k=int(_number(body, "top_k", own.get("top_k", 40), 0, 1000)),
        min_p=_number(body, "min_p", own.get("min_p", 0.05), 0.0, 1.0),
        repeat_penalty=_number(body, "repeat_penalty", own.get("repeat_penalty", 1.0), 0.01, 10.0),
        presence_penalty=_number(body, "presence_penalty", 0.0, -2.0, 2.0),
        frequency_penalty=_number(body, "frequency_penalty", 0.0, -2.0, 2.0),
        max_tokens=max_tokens or default_max,
        seed=seed,
        stop=_stop(body),
        logprobs=logprobs,
        response_format=_response_format(body),
    )


def _common(body: Any, skip: tuple[str, ...] = ()) -> tuple[str, int, int | None, bool, bool, dict[str, Any]]:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", None, "invalid_json")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "'model' is required", "model", "missing_required_parameter")
    n = _integer(body, "n", 1, 1, MAX_N) or 1
    seed = _integer(body, "seed", None, 0, 2**32 - 1)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be a boolean", "stream", "invalid_type")
    options = body.get("stream_options") or {}
    include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
    if body.get("echo"):
        raise ApiError(400, "'echo' is not supported", "echo", "unsupported_parameter")
    for key, feature in UNSUPPORTED_OPTIONS.items():
        value = body.get(key)
        if key in skip:
            continue
        if value in (None, "", [], {}) or (not isinstance(value, bool) and value in NEUTRAL_VALUES.get(key, ())):
            continue
        raise ApiError(400, f"'{key}' is not supported: this local server does not do {feature}", key,
                       "unsupported_parameter")
    extras = {key: value for key, value in body.items() if key not in KNOWN_KEYS}
    return model, n, seed, stream, include_usage, extras


def parse_completion(body: Any, defaults: dict[str, Any] | None = None) -> ParsedRequest:
    """Validate a /v1/completions body; `defaults` are the model's sampling defaults."""
    model, n, seed, stream, include_usage, extras = _common(body)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise ApiError(400, "'prompt' must be a string (token arrays and batches are not supported)",
                       "prompt", "invalid_type")
    prompt = _unicode(prompt, "prompt")
    logprobs = _integer(body, "logprobs", None, 0, 20)
    params = [_params(body, COMPLETION_DEFAULT_MAX_TOKENS, logprobs, None if seed is None else seed + i, defaults)
              for i in range(n)]
    choices = [GenerationRequest("completion", prompt=prompt, params=p) for p in params]
    return ParsedRequest("completions", model, choices, stream, include_usage, logprobs is not None, extras)


def _unicode(text: str, param: str) -> str:
    """`text` if it can be written as UTF-8; JSON's \\u escapes can carry lone surrogates that cannot."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ApiError(400, f"'{param}' is not valid Unicode text (a lone surrogate at position {exc.start})",
                       param, "invalid_value") from exc
    return text


def _message_text(message: dict[str, Any], index: int) -> str:
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return _unicode(content, f"messages[{index}].content")
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ApiError(400, f"messages[{index}]: only text content parts are supported",
                               f"messages[{index}].content", "unsupported_content")
            texts.append(part["text"])
        return _unicode("\n".join(texts), f"messages[{index}].content")
    raise ApiError(400, f"messages[{index}].content must be a string or a list of text parts",
                   f"messages[{index}].content", "invalid_type")


def parse_chat(body: Any, defaults: dict[str, Any] | None = None) -> ParsedRequest:
    """Validate a /v1/chat/completions body; `defaults` are the model's sampling defaults."""
    try:
        return _parse_chat(body, defaults)
    except ToolError as exc:
        raise ApiError(400, str(exc), exc.param, exc.code) from exc


def _chat_message(message: dict[str, Any], role: str, text: str, index: int) -> dict[str, Any]:
    """One non-system message in the runner's shape (app.core.tools.history)."""
    if role == "assistant" and message.get("tool_calls") not in (None, []):
        return {"role": role, "content": text,
                "tool_calls": assistant_calls(message["tool_calls"], f"messages[{index}].tool_calls")}
    if role == "tool":
        return {"role": role, "content": text, "tool_call_id": message.get("tool_call_id")}
    return {"role": role, "content": text}


def _parse_chat(body: Any, defaults: dict[str, Any] | None) -> ParsedRequest:
    model, n, seed, stream, include_usage, extras = _common(body, TOOL_KEYS)
    spec = tool_spec(body.get("tools"), body.get("tool_choice"), body.get("parallel_tool_calls"))
    if spec is not None:
        check_convertible(spec)
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise ApiError(400, "'messages' must be a non-empty list", "messages", "invalid_value")
    messages: list[dict[str, Any]] = []
    indexed: list[tuple[int, dict[str, Any]]] = []
    system_parts: list[str] = []
    for index, message in enumerate(raw):
        if not isinstance(message, dict):
            raise ApiError(400, f"messages[{index}] must be an object", f"messages[{index}]", "invalid_type")
        role = message.get("role")
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant", "tool"):
            raise ApiError(400, f"messages[{index}].role must be system, user, assistant or tool",
                           f"messages[{index}].role", "invalid_value")
        text = _message_text(message, index)
        if role == "system":
            system_parts.append(text)
        else:
            messages.append(_chat_message(message, role, text, index))
            indexed.append((index, messages[-1]))
    check_tool_results(indexed)
    if not messages:
        raise ApiError(400, "'messages' needs at least one user message", "messages", "invalid_value")
    logprobs_flag = body.get("logprobs", False)
    if not isinstance(logprobs_flag, bool):
        raise ApiError(400, "'logprobs' must be a boolean", "logprobs", "invalid_type")
    top = _integer(body, "top_logprobs", None, 0, 20)
    if top is not None and not logprobs_flag:
        raise ApiError(400, "'top_logprobs' needs 'logprobs': true", "top_logprobs", "invalid_value")
    logprobs = (top or 0) if logprobs_flag else None
    system = "\n\n".join(system_parts) or None
    choices = [GenerationRequest("chat", messages=messages, system_prompt=system, tools=spec,
                                 params=_params(body, CHAT_DEFAULT_MAX_TOKENS, logprobs,
                                                None if seed is None else seed + i, defaults))
               for i in range(n)]
    return ParsedRequest("chat", model, choices, stream, include_usage, logprobs_flag, extras, spec)


def new_id(prefix: str) -> str:
    """An OpenAI-style object id."""
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    """Unix seconds, for `created`."""
    return int(time.time())


def chat_logprobs(raw: dict[str, list[Any]] | None) -> dict[str, Any] | None:
    """llama.cpp's completion-style logprobs as the chat API's `logprobs.content` list."""
    if not raw:
        return None
    content = []
    for token, logprob, top in zip(raw.get("tokens", []), raw.get("token_logprobs", []),
                                   raw.get("top_logprobs", []) or [None] * len(raw.get("tokens", []))):
        alternatives = [{"token": t, "logprob": lp, "bytes": list(t.encode("utf-8"))}
                        for t, lp in sorted((top or {}).items(), key=lambda kv: -kv[1])]
        content.append({"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8")),
                        "top_logprobs": alternatives})
    return {"content": content}


def finish_reason(reason: str) -> str:
    """OpenAI's finish reasons: stop, length or tool_calls (cancelled runs never reach a client)."""
    return reason if reason in ("length", "tool_calls") else "stop"
