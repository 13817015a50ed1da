"""Tool calls and tool results in a chat's history, from OpenAI's message shapes to the runner's.

The runner's messages are {role, content} with two additions: an assistant turn may carry
`tool_calls` ([{id, name, arguments}], arguments as the JSON text the model wrote) and a `tool` turn
carries `tool_call_id` and the `name` of the tool that produced it. A tool result must answer a call
made earlier in the same history: a stray id is a client bug we report rather than guess around.
"""

from __future__ import annotations

import json
from typing import Any

from app.core.tools.spec import NAME_PATTERN, ToolError

MAX_ID_CHARS = 128


def assistant_calls(raw: Any, where: str) -> list[dict[str, str]]:
    """An assistant message's OpenAI `tool_calls` as [{id, name, arguments}]; ToolError if malformed."""
    if not isinstance(raw, list) or not raw:
        raise ToolError(f"{where} must be a non-empty list", where, "invalid_tool_calls")
    calls = []
    for index, call in enumerate(raw):
        at = f"{where}[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or call.get("type", "function") != "function":
            raise ToolError(f"{at} must be {{\"id\", \"type\": \"function\", \"function\": {{\"name\", \"arguments\"}}}}",
                            at, "invalid_tool_calls")
        call_id, name, arguments = call.get("id"), function.get("name"), function.get("arguments", "{}")
        if not isinstance(call_id, str) or not 0 < len(call_id) <= MAX_ID_CHARS:
            raise ToolError(f"{at}.id must be a string of 1 to {MAX_ID_CHARS} characters", f"{at}.id",
                            "invalid_tool_calls")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise ToolError(f"{at}.function.name must be a tool name", f"{at}.function.name", "invalid_tool_calls")
        if isinstance(arguments, dict):
            arguments = json.dumps(arguments, ensure_ascii=False)
        if not isinstance(arguments, str):
            raise ToolError(f"{at}.function.arguments must be a JSON string", f"{at}.function.arguments",
                            "invalid_tool_calls")
        calls.append({"id": call_id, "name": name, "arguments": arguments})
    return calls


def check_tool_results(messages: list[tuple[int, dict[str, Any]]]) -> None:
    """Every tool message answers a call made by an earlier assistant message (by tool_call_id) and
    gets that call's tool `name`. `messages` are (index in the request, message) pairs, so that a
    ToolError names the message as the client numbered it."""
    made: dict[str, str] = {}
    for index, message in messages:
        for call in message.get("tool_calls") or []:
            made[call["id"]] = call["name"]
        if message["role"] != "tool":
            continue
        call_id = message.get("tool_call_id")
        where = f"messages[{index}].tool_call_id"
        if not isinstance(call_id, str) or not call_id:
            raise ToolError(f"messages[{index}] is a tool result without a tool_call_id", where, "invalid_tool_result")
        if call_id not in made:
            raise ToolError(f"messages[{index}] answers tool call {json.dumps(call_id)[:80]}, which no earlier "
                            "assistant message made", where, "unknown_tool_call_id")
        message["name"] = made[call_id]


def call_count(messages: list[dict[str, Any]]) -> tuple[int, int]:
    """(tool calls made by assistant turns, tool results) in a history."""
    calls = sum(len(m.get("tool_calls") or []) for m in messages)
    return calls, sum(1 for m in messages if m["role"] == "tool")
