"""OpenAI's Responses API (/v1/responses) as a chat completion, and its answer back.

to_chat() turns a Responses body into a /v1/chat/completions body (instructions as the system
message, input items as messages, function_call items as an assistant's tool_calls,
function_call_output items as `tool` messages, function tools, tool_choice, max_output_tokens as
max_tokens), so a Responses request runs through the same chat handler, runner and ledger as a chat
request. from_chat() turns the chat completion into a Response object; ResponseEvents turns the
stream of chat chunks into the Responses streaming events. Responses are not stored, so
`previous_response_id` is refused: a client sends the whole conversation as input items.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from app.core.serve.openai_api import ApiError, joined_text

MAX_INPUT_ITEMS = 1024
MESSAGE_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
TEXT_PART_TYPES = {"input_text", "output_text", "text"}
TRANSLATED_KEYS = {
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
    "temperature", "top_p", "stream", "text", "store", "metadata", "user", "previous_response_id",
    "truncation", "include", "seed",
}
REFUSED_OPTIONS = {
    "previous_response_id": "this server does not store responses: send the whole conversation as input items",
    "conversation": "this server does not store conversations: send the whole conversation as input items",
    "background": "background responses are not supported",
    "prompt": "stored prompt templates are not supported",
    "reasoning": "this server's models do not take reasoning options",
}


def new_item_id(prefix: str) -> str:
    """An id in the Responses API's style (resp_..., msg_..., fc_...)."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


@dataclass
class ResponseContext:
    """What the answer echoes from the request, and the ids it gives out."""

    id: str
    created_at: int
    instructions: str | None
    tools: list[dict[str, Any]]
    tool_choice: Any
    parallel_tool_calls: bool
    max_output_tokens: int | None
    temperature: float | None
    top_p: float | None
    text_format: dict[str, Any]
    metadata: dict[str, Any]
    extras: dict[str, Any] = field(default_factory=dict)


def _fail(message: str, param: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, param, code)


def _text_of(content: Any, param: str) -> str:
    """A message's content (a string or text parts) as one text."""
    return joined_text(content, param, TEXT_PART_TYPES, "input_text parts", " (this server's models read text only)")


def _call_id(item: dict[str, Any], param: str) -> str:
    call_id = item.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        raise _fail(f"'{param}.call_id' must be a non-empty string", f"{param}.call_id")
    return call_id


def _messages(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    if not isinstance(raw, list) or not raw:
        raise _fail("'input' must be a string or a non-empty list of input items", "input", "invalid_type")
    if len(raw) > MAX_INPUT_ITEMS:
        raise _fail(f"'input' has {len(raw)} items; at most {MAX_INPUT_ITEMS} go in one request", "input")
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        param = f"input[{index}]"
        if not isinstance(item, dict):
            raise _fail(f"'{param}' must be an object", param, "invalid_type")
        kind = item.get("type", "message")
        if kind == "message":
            role = MESSAGE_ROLES.get(item.get("role"))  # type: ignore[arg-type]
            if role is None:
                raise _fail(f"'{param}.role' must be user, assistant, system or developer", f"{param}.role")
            messages.append({"role": role, "content": _text_of(item.get("content"), f"{param}.content")})
        elif kind == "function_call":
            name, arguments = item.get("name"), item.get("arguments")
            if not isinstance(name, str) or not name:
                raise _fail(f"'{param}.name' must be the function's name", f"{param}.name")
            if not isinstance(arguments, str):
                raise _fail(f"'{param}.arguments' must be a JSON string", f"{param}.arguments", "invalid_type")
            call = {"id": _call_id(item, param), "type": "function", "function": {"name": name, "arguments": arguments}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and last.get("tool_calls") and not last["content"]:
                last["tool_calls"].append(call)  # calls made together are one assistant turn
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append({"role": "tool", "tool_call_id": _call_id(item, param),
                             "content": _text_of(output, f"{param}.output")})
        else:
            shown = kind if isinstance(kind, str) else type(kind).__name__
            raise _fail(f"'{param}.type' {shown!r} is not supported; use message, function_call or "
                        "function_call_output items", f"{param}.type", "unsupported_input")
    return messages


def _tools(raw: Any) -> list[dict[str, Any]]:
    if raw in (None, []):
        return []
    if not isinstance(raw, list):
        raise _fail("'tools' must be a list of function tools", "tools", "invalid_type")
    tools = []
    for index, tool in enumerate(raw):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else type(tool).__name__
            raise _fail(f"'tools[{index}].type' is {kind!r}; only function tools are supported here",
                        f"tools[{index}].type", "unsupported_tool")
        function = {key: tool[key] for key in ("name", "description", "parameters", "strict") if key in tool}
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(raw: Any) -> Any:
    if raw is None or raw in ("auto", "none", "required"):
        return raw
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("name"), str):
        return {"type": "function", "function": {"name": raw["name"]}}
    raise _fail("'tool_choice' must be auto, none, required or {\"type\": \"function\", \"name\": ...}",
                "tool_choice")


def _response_format(text: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The chat response_format for the Responses `text.format`, and the format to echo."""
    fmt = (text or {}).get("format") if isinstance(text, dict) else None
    if text is not None and not isinstance(text, dict):
        raise _fail("'text' must be an object", "text", "invalid_type")
    if fmt is None or (isinstance(fmt, dict) and fmt.get("type") == "text"):
        return None, {"type": "text"}
    if not isinstance(fmt, dict) or fmt.get("type") not in ("json_object", "json_schema"):
        raise _fail("'text.format.type' must be text, json_object or json_schema", "text.format.type")
    if fmt["type"] == "json_object":
        return {"type": "json_object"}, fmt
    if not isinstance(fmt.get("schema"), dict):
        raise _fail("'text.format.schema' must be a JSON schema object", "text.format.schema")
    schema = {"name": fmt.get("name") or "response", "schema": fmt["schema"], "strict": bool(fmt.get("strict"))}
    return {"type": "json_schema", "json_schema": schema}, fmt


def to_chat(body: Any) -> tuple[dict[str, Any], ResponseContext]:
    """The chat-completions body for a Responses body, and the context of its answer; ApiError
    (400) naming the Responses field that is wrong."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", None, "invalid_json")
    for key, reason in REFUSED_OPTIONS.items():
        if body.get(key) not in (None, False, {}):
            raise ApiError(400, f"'{key}' is not supported: {reason}", key, "unsupported_parameter")
    if "input" not in body:
        raise _fail("'input' is required", "input", "missing_required_parameter")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise _fail("'instructions' must be a string", "instructions", "invalid_type")
    messages = _messages(body["input"])
    if instructions:
        messages.insert(0, {"role": "system", "content": instructions})
    max_output = body.get("max_output_tokens")
    if max_output is not None and (isinstance(max_output, bool) or not isinstance(max_output, int) or max_output < 1):
        raise _fail("'max_output_tokens' must be a positive integer", "max_output_tokens")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise _fail("'metadata' must be an object", "metadata", "invalid_type")
    tools, tool_choice = _tools(body.get("tools")), _tool_choice(body.get("tool_choice"))
    response_format, text_format = _response_format(body.get("text"))
    parallel = body.get("parallel_tool_calls", True)
    if not isinstance(parallel, bool):
        raise _fail("'parallel_tool_calls' must be a boolean", "parallel_tool_calls", "invalid_type")
    chat: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    for source, target in (("temperature", "temperature"), ("top_p", "top_p"), ("max_output_tokens", "max_tokens"),
                           ("stream", "stream"), ("seed", "seed"), ("user", "user")):
        if body.get(source) is not None:
            chat[target] = body[source]
    if tools:
        chat["tools"], chat["parallel_tool_calls"] = tools, parallel
    if tool_choice is not None:
        chat["tool_choice"] = tool_choice
    if response_format is not None:
        chat["response_format"] = response_format
    if chat.get("stream"):
        chat["stream_options"] = {"include_usage": True}
    context = ResponseContext(
        id=new_item_id("resp"), created_at=int(time.time()), instructions=instructions,
        tools=[t for t in body.get("tools") or []], tool_choice=body.get("tool_choice") or "auto",
        parallel_tool_calls=parallel, max_output_tokens=max_output, temperature=body.get("temperature"),
        top_p=body.get("top_p"), text_format=text_format, metadata=metadata,
        extras={key: value for key, value in body.items() if key not in TRANSLATED_KEYS})
    return chat, context


def _usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + completion}


def response_object(context: ResponseContext, model: str, status: str, output: list[dict[str, Any]],
                    usage: dict[str, Any] | None, finish_reason: str | None = None,
                    error: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Response object in any state (in_progress, completed, incomplete, failed)."""
    incomplete = {"reason": "max_output_tokens"} if finish_reason == "length" else None
    if status == "completed" and incomplete:
        status = "incomplete"
    return {
        "id": context.id, "object": "response", "created_at": context.created_at, "status": status,
        "completed_at": int(time.time()) if status in ("completed", "incomplete") else None,
        "error": error, "incomplete_details": incomplete, "instructions": context.instructions,
        "max_output_tokens": context.max_output_tokens, "model": model, "output": output,
        "parallel_tool_calls": context.parallel_tool_calls, "previous_response_id": None,
        "temperature": context.temperature, "text": {"format": context.text_format},
        "tool_choice": context.tool_choice, "tools": context.tools, "top_p": context.top_p,
        "truncation": "disabled", "store": False, "metadata": context.metadata, "usage": _usage(usage),
    }


def _message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if status == "completed" else []
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def _call_item(item_id: str, call: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    function = call.get("function") or {}
    return {"type": "function_call", "id": item_id, "call_id": call.get("id") or "", "name": function.get("name") or "",
            "arguments": function.get("arguments") or "" if status == "completed" else "", "status": status}


def from_chat(completion: dict[str, Any], context: ResponseContext) -> dict[str, Any]:
    """The Response object for a (non-streamed) chat completion."""
    choice = completion["choices"][0]
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    if message.get("content"):
        output.append(_message_item(new_item_id("msg"), message["content"]))
    for call in message.get("tool_calls") or []:
        output.append(_call_item(new_item_id("fc"), call))
    response = response_object(context, completion["model"], "completed", output, completion.get("usage"),
                               choice.get("finish_reason"))
    response["stillroom"] = completion.get("stillroom")
    return response


class ResponseEvents:
    """Turns chat-completion chunks into Responses streaming events, as (event name, payload)."""

    def __init__(self, context: ResponseContext, model: str) -> None:
        self.context, self.model = context, model
        self.output: list[dict[str, Any]] = []
        self.sequence = 0
        self._text: dict[str, Any] | None = None  # the open message item: id, index, pieces
        self._calls: dict[int, dict[str, Any]] = {}  # chat tool_call index -> the open function_call item
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None

    def _event(self, kind: str, **payload: Any) -> tuple[str, dict[str, Any]]:
        event = {"type": kind, "sequence_number": self.sequence, **payload}
        self.sequence += 1
        return kind, event

    def start(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """response.created and response.in_progress."""
        snapshot = response_object(self.context, self.model, "in_progress", [], None)
        yield self._event("response.created", response=snapshot)
        yield self._event("response.in_progress", response=snapshot)

    def fail(self, error: ApiError) -> Iterator[tuple[str, dict[str, Any]]]:
        """Close the open items and end with response.failed, for an error mid-stream."""
        yield from self._close()
        failed = response_object(self.context, self.model, "failed", self.output, self._usage,
                                 error={"code": error.code or "server_error", "message": error.message})
        yield self._event("response.failed", response=failed)

    def feed(self, chunk: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        """The events for one chat chunk."""
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                yield from self._text_delta(delta["content"])
            for call in delta.get("tool_calls") or []:
                yield from self._call_delta(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]

    def _text_delta(self, text: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if self._text is None:
            item_id = new_item_id("msg")
            self._text = {"id": item_id, "index": len(self.output), "pieces": []}
            self.output.append(_message_item(item_id, "", "in_progress"))
            yield self._event("response.output_item.added", output_index=self._text["index"],
                              item=_message_item(item_id, "", "in_progress"))
            yield self._event("response.content_part.added", item_id=item_id, output_index=self._text["index"],
                              content_index=0, part={"type": "output_text", "text": "", "annotations": []})
        self._text["pieces"].append(text)
        yield self._event("response.output_text.delta", item_id=self._text["id"], output_index=self._text["index"],
                          content_index=0, delta=text, logprobs=[])

    def _call_delta(self, call: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        index = call.get("index", 0)
        open_call = self._calls.get(index)
        function = call.get("function") or {}
        if open_call is None:
            yield from self._close_text()
            item_id = new_item_id("fc")
            open_call = {"id": item_id, "index": len(self.output), "call_id": call.get("id") or "",
                         "name": function.get("name") or "", "pieces": []}
            self._calls[index] = open_call
            item = _call_item(item_id, {"id": open_call["call_id"], "function": {"name": open_call["name"]}},
                              "in_progress")
            self.output.append(item)
            yield self._event("response.output_item.added", output_index=open_call["index"], item=item)
        if function.get("arguments"):
            open_call["pieces"].append(function["arguments"])
            yield self._event("response.function_call_arguments.delta", item_id=open_call["id"],
                              output_index=open_call["index"], delta=function["arguments"])

    def _close_text(self) -> Iterator[tuple[str, dict[str, Any]]]:
        if self._text is None:
            return
        text, item_id, index = "".join(self._text["pieces"]), self._text["id"], self._text["index"]
        self._text = None
        yield self._event("response.output_text.done", item_id=item_id, output_index=index, content_index=0,
                          text=text, logprobs=[])
        yield self._event("response.content_part.done", item_id=item_id, output_index=index, content_index=0,
                          part={"type": "output_text", "text": text, "annotations": []})
        self.output[index] = _message_item(item_id, text)
        yield self._event("response.output_item.done", output_index=index, item=self.output[index])

    def _close(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from self._close_text()
        for open_call in self._calls.values():
            arguments = "".join(open_call["pieces"])
            yield self._event("response.function_call_arguments.done", item_id=open_call["id"],
                              output_index=open_call["index"], name=open_call["name"], arguments=arguments)
            item = _call_item(open_call["id"], {"id": open_call["call_id"],
                                                "function": {"name": open_call["name"], "arguments": arguments}})
            self.output[open_call["index"]] = item
            yield self._event("response.output_item.done", output_index=open_call["index"], item=item)
        self._calls = {}

    def finish(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Close the open items and end with response.completed (or incomplete, at max_output_tokens)."""
        yield from self._close()
        final = response_object(self.context, self.model, "completed", self.output, self._usage, self._finish)
        yield self._event("response.incomplete" if final["status"] == "incomplete" else "response.completed",
                          response=final)

