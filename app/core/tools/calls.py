"""Reading a model's answer back into tool calls, and checking their arguments against the schemas.

Two shapes are read: the generic {"tool_calls": [{"name", "arguments"}]} object (what the generic
prompt asks for and the grammar enforces) and <tool_call>{"name", "arguments"}</tool_call> blocks
(what Hermes-style chat templates teach). An answer in neither shape is text. An answer that is a
call but names an unknown tool, does not parse, or has arguments that fail the tool's schema is not
passed on as if it were fine: the outcome carries an error the client can act on.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from app.core.tools.spec import ToolSpec

HERMES_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
CALL_MARKERS = ('{"tool_calls"', "<tool_call>")
MAX_ERRORS_NAMED = 3


@dataclass(frozen=True)
class ToolCall:
    """One call the model made: a fresh id, the tool's name, the arguments as JSON text."""

    id: str
    name: str
    arguments: str

    def as_openai(self) -> dict[str, Any]:
        """The call as an entry of OpenAI's message.tool_calls."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True)
class ToolOutcome:
    """What an answer to a request with tools amounts to: text, calls, or an error."""

    content: str | None
    calls: tuple[ToolCall, ...] = ()
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """What the ledger row says about the answer."""
        return {"calls": len(self.calls), "call_names": [c.name for c in self.calls],
                "call_ids": [c.id for c in self.calls], "error": self.error, **self.detail}


def new_call_id() -> str:
    """An OpenAI-style tool call id."""
    return f"call_{uuid.uuid4().hex[:24]}"


def looks_like_call(text: str) -> bool:
    """Whether `text` (the start of an answer is enough) begins like a tool call rather than prose;
    False while it is still too short to tell (see may_become_call)."""
    stripped = _without_space(text.lstrip())
    return any(stripped.startswith(_without_space(m)) for m in CALL_MARKERS)


def may_become_call(text: str) -> bool:
    """Whether the start of an answer could still turn out to be a tool call."""
    stripped = _without_space(text.lstrip())
    return any(_without_space(m).startswith(stripped) or stripped.startswith(_without_space(m))
               for m in CALL_MARKERS)


def _without_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _raw_calls(text: str) -> list[Any] | None:
    """The call objects in `text`, or None when it is not a tool-call answer. Raises ValueError for
    an answer that starts as a call but does not parse."""
    stripped = text.strip()
    if stripped.startswith("<tool_call>"):
        return [json.loads(block) for block in HERMES_CALL.findall(stripped)]
    if not looks_like_call(stripped):
        return None
    value = json.loads(stripped)
    if not isinstance(value, dict) or not isinstance(value.get("tool_calls"), list):
        raise ValueError('the answer is not {"tool_calls": [...]}')
    return value["tool_calls"]


def _schema_errors(schema: dict[str, Any], arguments: Any) -> list[str]:
    from jsonschema import validators

    validator = validators.validator_for(schema, default=validators.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
    return [f"at {'/'.join(str(p) for p in e.path) or '(root)'}: {e.message}" for e in errors[:MAX_ERRORS_NAMED]]


def read_answer(spec: ToolSpec, text: str, finish_reason: str) -> ToolOutcome:
    """The tool calls (or text) in a model's answer to a request offering `spec`."""
    if not spec.callable:
        return ToolOutcome(text)
    try:
        raw = _raw_calls(text)
    except (ValueError, RecursionError) as exc:
        cut = " (the answer was cut off by max_tokens)" if finish_reason == "length" else ""
        return ToolOutcome(None, error=f"the model's tool call is not valid JSON{cut}: {exc}")
    if raw is None or not raw:
        if spec.must_call:
            return ToolOutcome(None, error="the model answered in text although a tool call was required")
        return ToolOutcome(text)
    if len(raw) > 1 and not spec.parallel:
        return ToolOutcome(None, error=f"the model made {len(raw)} tool calls although parallel_tool_calls is false")
    calls = []
    for index, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        arguments = item.get("arguments", item.get("parameters", {})) if isinstance(item, dict) else None
        tool = next((t for t in spec.callable if t.name == name), None)
        if tool is None:
            return ToolOutcome(None, error=f"the model called {json.dumps(name)[:80]}, which is not a tool it may call "
                                           f"here ({', '.join(t.name for t in spec.callable)})")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError as exc:
                return ToolOutcome(None, error=f"the model's arguments for '{name}' are not valid JSON: {exc}")
        problems = _schema_errors(tool.parameters, arguments)
        if problems:
            return ToolOutcome(None, error=f"the model's arguments for '{name}' do not match its parameters schema "
                                           f"({'; '.join(problems)})",
                               detail={"failed_call": {"index": index, "name": name, "arguments": arguments}})
        calls.append(ToolCall(new_call_id(), tool.name, json.dumps(arguments, ensure_ascii=False)))
    return ToolOutcome(None, tuple(calls))
