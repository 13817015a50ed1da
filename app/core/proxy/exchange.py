"""What a proxied request and its answer amount to in a ledger row: the prompt, messages and
parameters read from the request body; the text, finish reason and token counts read from the
engine's answer, whole (JSON) or streamed (server-sent events), in OpenAI's, the Responses API's or
Anthropic's shape. Reading never changes what the client receives; what cannot be read is kept
as raw text (bounded)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from app.core.ingest.errors import RecordError
from app.core.ingest.records import content_text

MAX_RAW_CHARS = 64 * 1024  # of an answer that is neither JSON nor events, kept as the row's response
CONTENT_KEYS = ("model", "messages", "prompt", "input", "stream", "system", "instructions")
MODES = {"/v1/chat/completions": "chat", "/v1/completions": "completion", "/v1/embeddings": "embedding",
         "/v1/responses": "chat", "/v1/messages": "chat"}


@dataclass
class Answer:
    """What was read of an engine's answer."""

    text: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model: str | None = None
    error: str | None = None
    tool_calls: list[Any] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)  # embeddings: count and dimensions


def text_of(content: Any) -> str:
    """A message's content as text (the importers' reading: a string, or the text parts of a list
    joined by newlines, [image] for other parts); content of any other shape as its JSON."""
    try:
        return content_text(content, "content") or ""
    except RecordError:
        return json.dumps(content, ensure_ascii=False, default=str)


def read_request(path: str, body: Any) -> dict[str, Any]:
    """The row fields a request body fills: mode, prompt, system prompt, messages, params, seed and
    whether logprobs were asked."""
    body = body if isinstance(body, dict) else {}
    mode = MODES.get(path, "request")
    messages = body.get("messages") if isinstance(body.get("messages"), list) else None
    system = body.get("system") or body.get("instructions")
    inputs = body.get("input")
    if messages is None and isinstance(inputs, list) and path == "/v1/responses":
        messages = [m for m in inputs if isinstance(m, dict)]
    if messages is not None:
        messages = [m for m in messages if isinstance(m, dict)]
        system = system or next((text_of(m.get("content")) for m in messages if m.get("role") in ("system", "developer")), None)
        user = [text_of(m.get("content")) for m in messages if m.get("role") == "user"]
        prompt = user[-1] if user else None
    elif path == "/v1/embeddings":
        prompt = "\n".join(str(t) for t in inputs) if isinstance(inputs, list) else text_of(inputs)
    else:
        raw = body.get("prompt", inputs)
        prompt = "\n".join(str(t) for t in raw) if isinstance(raw, list) else (None if raw is None else text_of(raw))
    params = {k: v for k, v in body.items() if k not in CONTENT_KEYS}
    seed = body.get("seed")
    logprobs = body.get("logprobs") not in (None, False) or body.get("top_logprobs") is not None
    return {"mode": mode, "prompt": prompt, "system_prompt": text_of(system) if system is not None else None,
            "messages": messages, "params": params or None, "seed": seed if isinstance(seed, int) else None,
            "logprobs_requested": int(bool(logprobs))}


def read_answer(data: bytes, content_type: str | None, path: str) -> Answer:
    """Read an engine's whole answer (JSON) or its events (text/event-stream)."""
    if content_type and content_type.split(";")[0].strip().lower() == "text/event-stream":
        return read_events(data)
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        if path == "/v1/embeddings":  # vectors are not text (a cut-off answer lands here)
            return Answer()
        return Answer(text=data[:MAX_RAW_CHARS].decode("utf-8", "replace"))
    answer = Answer()
    if isinstance(body, dict):
        _read_object(body, answer, path)
    return answer


def read_events(data: bytes) -> Answer:
    """Server-sent events: each `data:` line's JSON read in order into one Answer."""
    answer = Answer()
    pieces: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if not payload or payload == "[DONE]":
            continue
        try:
            event = json.loads(payload)
        except (ValueError, RecursionError):
            continue
        if isinstance(event, dict):
            _read_event(event, answer, pieces, calls)
    answer.text = "".join(pieces) if pieces or answer.text is None else answer.text
    if calls:
        answer.tool_calls = [calls[i] for i in sorted(calls)]
    return answer


def _usage(usage: Any, answer: Answer) -> None:
    if isinstance(usage, dict):
        prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
        completion = usage.get("completion_tokens", usage.get("output_tokens"))
        answer.prompt_tokens = prompt if isinstance(prompt, int) else answer.prompt_tokens
        answer.completion_tokens = completion if isinstance(completion, int) else answer.completion_tokens


def _read_object(body: dict[str, Any], answer: Answer, path: str) -> None:
    """A whole answer: chat or completions choices, a Response, a Message, embeddings, or an error."""
    answer.model = body.get("model") if isinstance(body.get("model"), str) else None
    _usage(body.get("usage"), answer)
    error = body.get("error")
    if error is not None:
        answer.error = text_of(error.get("message") if isinstance(error, dict) else error)
    if path == "/v1/embeddings" and isinstance(body.get("data"), list):
        vectors = [d.get("embedding") for d in body["data"] if isinstance(d, dict)]
        first = vectors[0] if vectors else None
        while isinstance(first, list) and first and isinstance(first[0], list):
            first = first[0]
        answer.summary = {"count": len(vectors), "dimensions": len(first) if isinstance(first, list) else None}
        return
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        choice = choices[0]
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        answer.text = text_of(message.get("content")) if message else text_of(choice.get("text"))
        answer.tool_calls = list(message.get("tool_calls") or [])
        answer.finish_reason = choice.get("finish_reason")
    elif isinstance(body.get("output"), list):  # a Response
        answer.text = "".join(text_of(item.get("content")) for item in body["output"]
                              if isinstance(item, dict) and item.get("type") == "message")
        answer.finish_reason = body.get("status")
    elif isinstance(body.get("content"), list):  # an Anthropic Message
        answer.text = text_of([b for b in body["content"] if isinstance(b, dict) and b.get("type") == "text"])
        answer.tool_calls = [b for b in body["content"] if isinstance(b, dict) and b.get("type") == "tool_use"]
        answer.finish_reason = body.get("stop_reason")


def _read_event(event: dict[str, Any], answer: Answer, pieces: list[str], calls: dict[int, dict[str, Any]]) -> None:
    """One streamed event of any of the three APIs."""
    if isinstance(event.get("model"), str):
        answer.model = event["model"]
    _usage(event.get("usage"), answer)
    if isinstance(event.get("error"), dict):
        answer.error = text_of(event["error"].get("message"))
    kind = event.get("type")
    if kind == "response.output_text.delta":
        pieces.append(str(event.get("delta") or ""))
    elif kind == "response.completed" and isinstance(event.get("response"), dict):
        answer.finish_reason = event["response"].get("status")
        _usage(event["response"].get("usage"), answer)
    elif kind == "content_block_delta" and isinstance(event.get("delta"), dict):
        pieces.append(str(event["delta"].get("text") or ""))
    elif kind == "message_delta" and isinstance(event.get("delta"), dict):
        answer.finish_reason = event["delta"].get("stop_reason") or answer.finish_reason
    elif kind == "message_start" and isinstance(event.get("message"), dict):
        _usage(event["message"].get("usage"), answer)
    for choice in event.get("choices") or []:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        piece = delta.get("content") if delta else choice.get("text")
        if isinstance(piece, str):
            pieces.append(piece)
        for call in delta.get("tool_calls") or []:
            if isinstance(call, dict):
                slot = calls.setdefault(int(call.get("index") or 0), {"function": {"name": "", "arguments": ""}})
                function = call.get("function") if isinstance(call.get("function"), dict) else {}
                slot["id"] = call.get("id") or slot.get("id")
                slot["function"]["name"] += str(function.get("name") or "")
                slot["function"]["arguments"] += str(function.get("arguments") or "")
        if choice.get("finish_reason"):
            answer.finish_reason = choice["finish_reason"]
