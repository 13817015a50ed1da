"""OpenAI shapes: chat-messages JSONL, Batch API input lines and Batch API output lines.

Each read_* function takes one decoded record and returns the ImportedRecord(s) it holds, or
raises RecordError saying what is wrong with it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from app.core.ingest.errors import RecordError
from app.core.ingest.records import (
    ImportedRecord,
    ReadOptions,
    chat_messages,
    content_text,
    iso_time,
    json_safe,
    need_dict,
    need_str,
    opt_dict,
    opt_int,
    opt_str,
    split_chat,
)

# Request keys that are the content or the model, not sampling parameters.
CONTENT_KEYS = ("model", "messages", "prompt", "input", "instructions")
# Top-level keys of a chat-messages record that are request parameters.
PARAM_KEYS = (
    "temperature", "top_p", "top_k", "min_p", "max_tokens", "max_completion_tokens", "n", "stop", "seed",
    "presence_penalty", "frequency_penalty", "repetition_penalty", "logprobs", "top_logprobs", "logit_bias",
    "response_format", "tools", "tool_choice", "parallel_tool_calls", "functions", "reasoning_effort",
)
ENDPOINTS = {"/chat/completions": "chat", "/completions": "completion", "/responses": "responses"}


def read_messages(value: Any, options: ReadOptions) -> list[ImportedRecord]:
    """{"messages": [...]} with the assistant's answer as the last message when there is one."""
    record = need_dict(value, "the record")
    if "messages" not in record:
        raise RecordError('no "messages" field')
    messages = chat_messages(record["messages"])
    if not messages:
        raise RecordError("messages is empty")
    response: str | None = None
    origin: dict[str, Any] = {}
    if len(messages) > 1 and messages[-1]["role"] == "assistant":
        answer = messages.pop()
        response = answer["content"]
        if answer.get("tool_calls"):
            origin["response_tool_calls"] = answer["tool_calls"]
    system, prompt = split_chat(messages)
    params = json_safe({key: record[key] for key in PARAM_KEYS if key in record}, "the parameters")
    return [ImportedRecord(
        mode="chat", messages=messages, system_prompt=system, prompt=prompt, response=response,
        model_name=opt_str(record.get("model"), "model"), params=params,
        seed=opt_int(params.get("seed"), "seed"), logprobs_requested=_chat_logprobs(params),
        origin=origin,
    )]


def endpoint_of(url: Any, body: dict[str, Any]) -> str:
    """chat, completion or responses, from a Batch API url (or, without one, the body's keys)."""
    if url is None:
        if "messages" in body:
            return "chat"
        if "prompt" in body:
            return "completion"
        if "input" in body:
            return "responses"
        raise RecordError("the body has neither messages, prompt nor input")
    path = need_str(url, "url").strip().split("?")[0].rstrip("/")
    if path.startswith("/v1/"):
        path = path[3:]
    if path not in ENDPOINTS:
        raise RecordError(f"url {url!r} is not a text-generation endpoint "
                          "(expected /v1/chat/completions, /v1/completions or /v1/responses)")
    return ENDPOINTS[path]


def parse_request(body: Any, url: Any = None) -> ImportedRecord:
    """The request half of a generation from a Batch API request body."""
    body = need_dict(body, "body")
    endpoint = endpoint_of(url, body)
    params = json_safe({key: val for key, val in body.items() if key not in CONTENT_KEYS}, "the body")
    record = ImportedRecord(model_name=opt_str(body.get("model"), "body.model"), params=params,
                            seed=opt_int(params.get("seed"), "body.seed"))
    if endpoint == "chat":
        if "messages" not in body:
            raise RecordError('the body has no "messages"')
        messages = chat_messages(body["messages"], "body.messages")
        system, prompt = split_chat(messages)
        return replace(record, mode="chat", messages=messages, system_prompt=system, prompt=prompt,
                       logprobs_requested=_chat_logprobs(params))
    if endpoint == "completion":
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]
        prompt = need_str(prompt, "body.prompt")
        logprobs = params.get("logprobs")
        return replace(record, mode="completion", prompt=prompt,
                       logprobs_requested=logprobs is not None and logprobs is not False)
    messages = _responses_input(body.get("input"))
    instructions = opt_str(body.get("instructions"), "body.instructions")
    if instructions:
        messages.insert(0, {"role": "system", "content": instructions})
    system, prompt = split_chat(messages)
    include = params.get("include")
    asked = bool(params.get("top_logprobs")) or (
        isinstance(include, list) and "message.output_text.logprobs" in include)
    return replace(record, mode="chat", messages=messages, system_prompt=system, prompt=prompt,
                   logprobs_requested=asked)


def read_batch_input(value: Any, options: ReadOptions) -> list[ImportedRecord]:
    """{"custom_id", "method", "url", "body"}: the request only (no response in this file)."""
    record = need_dict(value, "the record")
    custom_id = need_str(record.get("custom_id"), "custom_id")
    if "body" not in record:
        raise RecordError('no "body" field')
    request = parse_request(record["body"], record.get("url"))
    request.origin = {"custom_id": custom_id, "url": record.get("url")}
    return [request]


def read_batch_output(value: Any, options: ReadOptions) -> list[ImportedRecord]:
    """{"id", "custom_id", "response": {"status_code", "body"}, "error"}; joined with its request
    by custom_id when options.requests is the index of the input file."""
    record = need_dict(value, "the record")
    custom_id = need_str(record.get("custom_id"), "custom_id")
    base = options.requests.request_for(custom_id) if options.requests is not None else None
    origin: dict[str, Any] = {"custom_id": custom_id,
                              "batch_request_id": opt_str(record.get("id"), "id")}
    if options.requests is not None:
        origin["request_found"] = base is not None
        if base is not None:
            origin.update(base.origin)
    base = replace(base or ImportedRecord(mode=None), origin=origin)
    response = opt_dict(record.get("response"), "response")
    if record.get("error") is not None:
        return [replace(base, status="error", error=_error_text(record["error"]))]
    if response is None:
        raise RecordError("neither a response nor an error")
    status_code = opt_int(response.get("status_code"), "response.status_code")
    body = need_dict(response.get("body"), "response.body")
    if response.get("request_id") is not None:
        origin["request_id"] = opt_str(response["request_id"], "response.request_id")
    if body.get("error") is not None or status_code not in (None, 200):
        message = _error_text(body["error"]) if body.get("error") is not None else f"HTTP status {status_code}"
        return [replace(base, status="error", error=message)]
    return _completions(body, base)


def _completions(body: dict[str, Any], base: ImportedRecord) -> list[ImportedRecord]:
    """One record per choice of a chat.completion / text_completion, or the text of a response."""
    usage = opt_dict(body.get("usage"), "usage") or {}
    prompt_tokens = opt_int(usage.get("prompt_tokens", usage.get("input_tokens")), "usage.prompt_tokens")
    completion_tokens = opt_int(usage.get("completion_tokens", usage.get("output_tokens")),
                                "usage.completion_tokens")
    common = replace(base, model_name=opt_str(body.get("model"), "model") or base.model_name,
                     prompt_tokens=prompt_tokens, started_at=iso_time(body.get("created", body.get("created_at"))))
    origin = dict(base.origin)
    if body.get("id") is not None:
        origin["completion_id"] = opt_str(body["id"], "response.body.id")
    if body.get("object") == "response" or ("output" in body and "choices" not in body):
        text, tool_calls = _responses_output(body.get("output"))
        if tool_calls:
            origin["response_tool_calls"] = tool_calls
        return [replace(common, mode=common.mode or "chat", response=text, completion_tokens=completion_tokens,
                        finish_reason=opt_str(body.get("status"), "status"), origin=origin)]
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise RecordError("response.body has no choices")
    results: list[ImportedRecord] = []
    for i, raw in enumerate(choices):
        choice = need_dict(raw, f"choices[{i}]")
        extra = dict(origin)
        if "message" in choice:
            message = need_dict(choice["message"], f"choices[{i}].message")
            text = content_text(message.get("content"), f"choices[{i}].message.content")
            if text is None and message.get("refusal") is not None:
                text = need_str(message["refusal"], f"choices[{i}].message.refusal")
                extra["refusal"] = True
            if message.get("tool_calls"):
                extra["response_tool_calls"] = json_safe(message["tool_calls"], "tool_calls")
            mode = "chat"
        elif "text" in choice:
            text, mode = need_str(choice["text"], f"choices[{i}].text"), "completion"
        else:
            raise RecordError(f"choices[{i}] has neither a message nor a text")
        if len(choices) > 1:
            extra["choice"] = i
        results.append(replace(
            common, mode=common.mode or mode, response=text or "",
            finish_reason=opt_str(choice.get("finish_reason"), f"choices[{i}].finish_reason"),
            logprobs=json_safe(choice.get("logprobs"), "logprobs"),
            completion_tokens=completion_tokens if len(choices) == 1 else None, origin=extra,
        ))
    return results


def _responses_input(raw: Any) -> list[dict[str, Any]]:
    """Responses API input (a string, or a list of messages and tool items) as chat messages."""
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    if not isinstance(raw, list):
        raise RecordError("body.input should be a string or a list")
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(raw, 1):
        item = need_dict(item, f"body.input[{i}]")
        if "role" in item:
            messages.extend(chat_messages([item], f"body.input[{i}]"))
        elif item.get("type") == "function_call_output":
            messages.append({"role": "tool", "content": str(item.get("output") or ""),
                             "tool_call_id": item.get("call_id")})
        elif item.get("type") == "function_call":
            messages.append({"role": "assistant", "content": "", "tool_calls": [json_safe(item, "input item")]})
    return messages


def _responses_output(raw: Any) -> tuple[str, list[Any]]:
    """The text and the tool calls of a Responses API output list."""
    if not isinstance(raw, list):
        raise RecordError("response.body.output should be a list")
    texts: list[str] = []
    calls: list[Any] = []
    for i, item in enumerate(raw, 1):
        item = need_dict(item, f"output[{i}]")
        if item.get("type") == "message":
            for part in item.get("content") or []:
                part = need_dict(part, f"output[{i}].content part")
                if part.get("type") == "output_text":
                    texts.append(need_str(part.get("text"), f"output[{i}] text"))
                elif part.get("type") == "refusal":
                    texts.append(need_str(part.get("refusal"), f"output[{i}] refusal"))
        elif item.get("type") == "function_call":
            calls.append(json_safe(item, "output item"))
    return "".join(texts), calls


def _chat_logprobs(params: dict[str, Any]) -> bool:
    return params.get("logprobs") is True or bool(params.get("top_logprobs"))


def _error_text(error: Any) -> str:
    """A Batch API error (object, string or anything) as one line."""
    if isinstance(error, dict):
        message, code = error.get("message"), error.get("code")
        if isinstance(message, str):
            return f"{code}: {message}" if isinstance(code, str) and code else message
    if isinstance(error, str):
        return error
    try:
        return json.dumps(error, ensure_ascii=False, default=str)[:2000]
    except (ValueError, TypeError, RecursionError):
        return "an error the file does not describe"
