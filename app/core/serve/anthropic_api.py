"""Anthropic's Messages API (/v1/messages) as a chat completion, and its answer back.

to_chat() turns a Messages body into a /v1/chat/completions body: `system` as the system message,
text blocks as message text, an assistant's tool_use blocks as its tool_calls (the input as JSON
arguments), a user's tool_result blocks as `tool` messages (an is_error result is prefixed with
"Error: "), tools with their input_schema as function tools, tool_choice auto/any/tool/none as
auto/required/a named function/none, stop_sequences as stop. The request then runs through the same
chat handler, runner and ledger as a chat request. from_chat() and MessageEvents turn the chat
completion, or its stream of chunks, into a Message or the Messages streaming events. Errors take
Anthropic's shape: {"type": "error", "error": {"type": ..., "message": ...}}.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.core.serve.openai_api import MAX_STOP, ApiError, joined_text

MAX_MESSAGES = 1024
MAX_VERSION_CHARS = 64
VERSION_HEADER = "anthropic-version"
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 503: "overloaded_error"}
TRANSLATED_KEYS = {"model", "messages", "system", "max_tokens", "stop_sequences", "temperature", "top_p", "top_k",
                   "stream", "tools", "tool_choice", "metadata", "thinking", "service_tier"}
STOP_REASONS = {"length": "max_tokens", "tool_calls": "tool_use"}


def error_body(exc: ApiError) -> dict[str, Any]:
    """An ApiError in Anthropic's error shape."""
    kind = ERROR_TYPES.get(exc.status, "api_error" if exc.status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": exc.message}}


def check_version(value: str | None) -> str:
    """The anthropic-version header: required, as Anthropic requires it, but any short printable
    value is taken (this server speaks one version of the API)."""
    if value is None or not value.strip():
        raise ApiError(400, f"the {VERSION_HEADER} header is required (for example '{VERSION_HEADER}: 2023-06-01')",
                       None, "missing_required_header")
    if len(value) > MAX_VERSION_CHARS or not value.isprintable():
        raise ApiError(400, f"the {VERSION_HEADER} header must be a short version string such as 2023-06-01",
                       None, "invalid_header")
    return value.strip()


def new_id(prefix: str) -> str:
    """An id in Anthropic's style (msg_..., toolu_...)."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def _fail(message: str, param: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, param, code)


def _text_blocks(content: Any, param: str) -> str:
    """A string, or a list of text blocks, as one text."""
    return joined_text(content, param, {"text"}, "text blocks", " here")


def _turn(message: Any, index: int) -> list[dict[str, Any]]:
    """The chat messages for one Messages turn (a user turn with tool results gives several)."""
    param = f"messages[{index}]"
    if not isinstance(message, dict):
        raise _fail(f"'{param}' must be an object", param, "invalid_type")
    role = message.get("role")
    if role not in ("user", "assistant"):
        raise _fail(f"'{param}.role' must be user or assistant (the system prompt goes in 'system')",
                    f"{param}.role")
    content = message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise _fail(f"'{param}.content' must be a string or a list of content blocks", f"{param}.content",
                    "invalid_type")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for number, block in enumerate(content):
        where = f"{param}.content[{number}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use" and role == "assistant":
            calls.append(_tool_use(block, where))
        elif kind == "tool_result" and role == "user":
            results.append(_tool_result(block, where))
        else:
            shown = kind if isinstance(kind, str) else type(block).__name__
            allowed = "text and tool_use" if role == "assistant" else "text and tool_result"
            raise _fail(f"'{where}' is a {shown!r} block; a {role} turn here takes {allowed} blocks",
                        f"{where}.type", "unsupported_content")
    if role == "assistant":
        turn: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts) if texts else None}
        if calls:
            turn["tool_calls"] = calls
        return [turn]
    return results + ([{"role": "user", "content": "\n".join(texts)}] if texts or not results else [])


def _tool_use(block: dict[str, Any], where: str) -> dict[str, Any]:
    call_id, name, arguments = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(call_id, str) or not call_id:
        raise _fail(f"'{where}.id' must be a non-empty string", f"{where}.id")
    if not isinstance(name, str) or not name:
        raise _fail(f"'{where}.name' must be the tool's name", f"{where}.name")
    if not isinstance(arguments, dict):
        raise _fail(f"'{where}.input' must be an object", f"{where}.input", "invalid_type")
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def _tool_result(block: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise _fail(f"'{where}.tool_use_id' must be the id of a tool_use block", f"{where}.tool_use_id")
    text = _text_blocks(block.get("content", ""), f"{where}.content")
    if block.get("is_error"):
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _tools(raw: Any) -> list[dict[str, Any]]:
    if raw in (None, []):
        return []
    if not isinstance(raw, list):
        raise _fail("'tools' must be a list of tools", "tools", "invalid_type")
    tools = []
    for index, tool in enumerate(raw):
        if not isinstance(tool, dict) or tool.get("type", "custom") != "custom":
            kind = tool.get("type") if isinstance(tool, dict) else type(tool).__name__
            raise _fail(f"'tools[{index}]' is a {kind!r} tool; only client tools (name, description, "
                        "input_schema) are supported here", f"tools[{index}]", "unsupported_tool")
        if not isinstance(tool.get("input_schema"), dict):
            raise _fail(f"'tools[{index}].input_schema' must be a JSON schema object", f"tools[{index}].input_schema")
        function = {"name": tool.get("name"), "parameters": tool["input_schema"]}
        if tool.get("description") is not None:
            function["description"] = tool["description"]
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(raw: Any) -> tuple[Any, bool | None]:
    """The chat tool_choice, and parallel_tool_calls (None: the default)."""
    if raw is None:
        return None, None
    kind = raw.get("type") if isinstance(raw, dict) else None
    parallel = False if isinstance(raw, dict) and raw.get("disable_parallel_tool_use") else None
    if kind in ("auto", "none"):
        return kind, parallel
    if kind == "any":
        return "required", parallel
    if kind == "tool" and isinstance(raw.get("name"), str):
        return {"type": "function", "function": {"name": raw["name"]}}, parallel
    raise _fail("'tool_choice' must be {\"type\": \"auto\"}, {\"type\": \"any\"}, {\"type\": \"none\"} or "
                "{\"type\": \"tool\", \"name\": ...}", "tool_choice")


def to_chat(body: Any) -> dict[str, Any]:
    """The chat-completions body for a Messages body; ApiError (400) naming the Messages field
    that is wrong."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", None, "invalid_json")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise _fail("'max_tokens' is required", "max_tokens", "missing_required_parameter")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise _fail("'max_tokens' must be a positive integer", "max_tokens")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise _fail("'messages' must be a non-empty list", "messages")
    if len(raw) > MAX_MESSAGES:
        raise _fail(f"'messages' has {len(raw)} turns; at most {MAX_MESSAGES} go in one request", "messages")
    messages = [chat for index, message in enumerate(raw) for chat in _turn(message, index)]
    if body.get("system") is not None:
        messages.insert(0, {"role": "system", "content": _text_blocks(body["system"], "system")})
    stops = body.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or len(stops) > MAX_STOP
                              or not all(isinstance(s, str) for s in stops)):
        raise _fail(f"'stop_sequences' must be a list of at most {MAX_STOP} strings", "stop_sequences")
    temperature = body.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                                    or not 0 <= temperature <= 1):
        raise _fail("'temperature' must be a number between 0 and 1", "temperature")
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled"):
        raise ApiError(400, "'thinking' is not supported: this server's models do not think aloud", "thinking",
                       "unsupported_parameter")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _fail("'metadata' must be an object", "metadata", "invalid_type")
    chat: dict[str, Any] = {"model": body.get("model"), "messages": messages, "max_tokens": max_tokens}
    for key in ("temperature", "top_p", "top_k", "stream"):
        if body.get(key) is not None:
            chat[key] = body[key]
    if stops:
        chat["stop"] = stops
    tools = _tools(body.get("tools"))
    choice, parallel = _tool_choice(body.get("tool_choice"))
    if tools:
        chat["tools"] = tools
    if choice is not None:
        chat["tool_choice"] = choice
    if parallel is not None and tools:
        chat["parallel_tool_calls"] = parallel
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        chat["user"] = metadata["user_id"]
    if chat.get("stream"):
        chat["stream_options"] = {"include_usage": True}
    return chat


def extras(body: dict[str, Any]) -> dict[str, Any]:
    """The fields of a Messages body that were not translated (kept in the row's meta)."""
    return {key: value for key, value in body.items() if key not in TRANSLATED_KEYS}


def _input(arguments: str | None) -> Any:
    """A tool call's arguments as the tool_use block's input object ({} when they are not an
    object; a call whose arguments are not JSON at all keeps them under "arguments")."""
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}


def _usage(usage: dict[str, Any] | None) -> dict[str, int]:
    usage = usage or {}
    return {"input_tokens": usage.get("prompt_tokens", 0), "output_tokens": usage.get("completion_tokens", 0)}


@dataclass(frozen=True)
class MessageIds:
    """The id of the Message being answered and the model it names."""

    id: str
    model: str


def _stop_reason(finish: str | None, stop_sequence: str | None) -> str:
    """Anthropic's stop_reason for a chat finish_reason (and the stop string that ended it, if any)."""
    return "stop_sequence" if stop_sequence is not None else STOP_REASONS.get(finish or "", "end_turn")


def from_chat(completion: dict[str, Any]) -> dict[str, Any]:
    """The Message for a (non-streamed) chat completion."""
    choice = completion["choices"][0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id") or new_id("toolu"), "name": function.get("name"),
                        "input": _input(function.get("arguments"))})
    stop_sequence = ((completion.get("stillroom") or {}).get("stop_sequences") or [None])[0]
    return {"id": new_id("msg"), "type": "message", "role": "assistant", "model": completion["model"],
            "content": content, "stop_reason": _stop_reason(choice.get("finish_reason"), stop_sequence),
            "stop_sequence": stop_sequence, "usage": _usage(completion.get("usage")),
            "stillroom": completion.get("stillroom")}


class MessageEvents:
    """Turns chat-completion chunks into the Messages streaming events, as (event name, payload)."""

    def __init__(self, ids: MessageIds) -> None:
        self.ids = ids
        self._block: int = -1  # index of the open content block
        self._kind: str | None = None  # text or tool_use
        self._calls: dict[int, int] = {}  # chat tool_call index -> content block index
        self._finish: str | None = None
        self._stop_sequence: str | None = None
        self._usage: dict[str, Any] | None = None

    def start(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """message_start."""
        message = {"id": self.ids.id, "type": "message", "role": "assistant", "model": self.ids.model, "content": [],
                   "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}
        yield "message_start", {"type": "message_start", "message": message}

    def _open(self, kind: str, block: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from self._close()
        self._block += 1
        self._kind = kind
        yield "content_block_start", {"type": "content_block_start", "index": self._block, "content_block": block}

    def _close(self) -> Iterator[tuple[str, dict[str, Any]]]:
        if self._kind is not None:
            yield "content_block_stop", {"type": "content_block_stop", "index": self._block}
            self._kind = None

    def fail(self, error: ApiError) -> Iterator[tuple[str, dict[str, Any]]]:
        """An error mid-stream: Anthropic's error event (the message ends there)."""
        yield "error", error_body(error)

    def feed(self, chunk: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        """The events for one chat chunk."""
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        self._stop_sequence = (chunk.get("stillroom") or {}).get("stop_sequence", self._stop_sequence)
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if self._kind != "text":
                    yield from self._open("text", {"type": "text", "text": ""})
                yield "content_block_delta", {"type": "content_block_delta", "index": self._block,
                                              "delta": {"type": "text_delta", "text": delta["content"]}}
            for call in delta.get("tool_calls") or []:
                yield from self._call(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]

    def _call(self, call: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        function = call.get("function") or {}
        index = call.get("index", 0)
        if index not in self._calls:
            block = {"type": "tool_use", "id": call.get("id") or new_id("toolu"), "name": function.get("name") or "",
                     "input": {}}
            yield from self._open("tool_use", block)
            self._calls[index] = self._block
        if function.get("arguments"):
            yield "content_block_delta", {"type": "content_block_delta", "index": self._calls[index],
                                          "delta": {"type": "input_json_delta", "partial_json": function["arguments"]}}

    def finish(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """content_block_stop for the open block, message_delta with the stop reason and usage,
        message_stop."""
        yield from self._close()
        reason = _stop_reason(self._finish, self._stop_sequence)
        yield "message_delta", {"type": "message_delta",
                                "delta": {"stop_reason": reason, "stop_sequence": self._stop_sequence},
                                "usage": _usage(self._usage)}
        yield "message_stop", {"type": "message_stop"}
