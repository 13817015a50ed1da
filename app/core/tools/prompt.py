"""How the model is told about tools: its own chat template's tool format when the template has
one, otherwise the generic format described in docs/server.md.

The generic format adds a system-prompt section listing each tool as JSON (name, description, JSON
Schema of the arguments) and asks for a JSON object {"tool_calls": [{"name", "arguments"}]} or plain
text. Earlier calls are written back into the assistant turns in that same format and tool results
become user turns that name the tool, so a template or format without tool roles can still render
the history, and a model sees its own earlier calls the way it is asked to make new ones.
"""

from __future__ import annotations

import json
from typing import Any

from app.core.tools.spec import ToolSpec

TOOLS_INTRO = "You can call these tools. Each line is one tool: its name, what it does, and a JSON Schema of its arguments."
CALL_SHAPE = '{"tool_calls": [{"name": "<tool name>", "arguments": {<arguments>}}]}'
ASK_AUTO = f"To call tools, answer with only a JSON object: {CALL_SHAPE}. Otherwise answer in plain text."
ASK_REQUIRED = f"Answer with only a JSON object that calls one or more of these tools: {CALL_SHAPE}."
ASK_FORCED = 'Answer with only a JSON object that calls the tool "{name}": {{"tool_calls": [{{"name": "{name}", "arguments": {{<arguments>}}}}]}}.'
ONE_AT_A_TIME = "Call one tool at a time."
RESULT_HEADER = "Result of the tool {name} (call {id}):"


def template_has_tools(template: str | None) -> bool:
    """Whether a chat template renders a `tools` list itself (Qwen, Llama 3.1, Hermes, SmolLM3...)."""
    return bool(template) and "tools" in template and "tool_calls" in template


def instructions(spec: ToolSpec) -> str:
    """The generic format's system-prompt section for `spec` (empty when no tool may be called)."""
    callable_tools = spec.callable
    if not callable_tools:
        return ""
    lines = [TOOLS_INTRO, *(json.dumps(t.as_listing(), ensure_ascii=False) for t in callable_tools)]
    if spec.forced is not None:
        lines.append(ASK_FORCED.format(name=spec.forced))
    else:
        lines.append(ASK_REQUIRED if spec.must_call else ASK_AUTO)
    if not spec.parallel:
        lines.append(ONE_AT_A_TIME)
    return "\n".join(lines)


def calls_as_text(calls: list[dict[str, str]]) -> str:
    """Earlier tool calls in the generic answer format."""
    rendered = []
    for call in calls:
        try:
            arguments: Any = json.loads(call["arguments"])
        except json.JSONDecodeError:
            arguments = call["arguments"]
        rendered.append({"name": call["name"], "arguments": arguments})
    return json.dumps({"tool_calls": rendered}, ensure_ascii=False)


def generic_messages(messages: list[dict[str, Any]], spec: ToolSpec | None) -> list[dict[str, str]]:
    """`messages` (system first, if any) as plain {role, content} turns in the generic format."""
    section = instructions(spec) if spec is not None else ""
    plain: list[dict[str, str]] = []
    for message in messages:
        role, content = message["role"], message.get("content") or ""
        if role == "assistant" and message.get("tool_calls"):
            calls = calls_as_text(message["tool_calls"])
            plain.append({"role": "assistant", "content": f"{content}\n{calls}" if content else calls})
        elif role == "tool":
            header = RESULT_HEADER.format(name=message.get("name") or "?", id=message.get("tool_call_id") or "?")
            plain.append({"role": "user", "content": f"{header}\n{content}"})
        else:
            plain.append({"role": role, "content": content})
    if section:
        if plain and plain[0]["role"] == "system":
            plain[0] = {"role": "system", "content": f"{plain[0]['content']}\n\n{section}"}
        else:
            plain.insert(0, {"role": "system", "content": section})
    return plain


def template_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`messages` in the shape chat templates with tool support read: OpenAI's tool_calls with the
    arguments as an object (templates write them with `tojson`)."""
    shaped = []
    for message in messages:
        item = dict(message)
        if message.get("tool_calls"):
            item["tool_calls"] = []
            for call in message["tool_calls"]:
                try:
                    arguments: Any = json.loads(call["arguments"])
                except json.JSONDecodeError:
                    arguments = call["arguments"]
                item["tool_calls"].append({"id": call["id"], "type": "function",
                                           "function": {"name": call["name"], "arguments": arguments}})
        shaped.append(item)
    return shaped
