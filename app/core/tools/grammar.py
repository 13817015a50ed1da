"""The llama.cpp grammar that makes a required or forced tool call well-formed.

The answer's JSON Schema is {"tool_calls": [one of the callable tools' {"name", "arguments"}]},
each tool's arguments being its own parameters schema, so the model can only write a known name
and arguments that parse and follow the schema's structure (types, required keys, enums). What a
grammar cannot express (numeric bounds, formats...) is checked after generation (calls.py).

Measured with SmolLM2-135M on two shared cores: llama-cpp-python applies a grammar to the whole
vocabulary at every token, about five times slower per token than free text, so `auto` is
constrained lazily: only an answer that begins like a call is sampled again under this grammar
(app/core/models/constraints.py, docs/server.md).
"""

from __future__ import annotations

import json
from typing import Any

from app.core.tools.spec import ToolError, ToolSpec

PROPERTY_ORDER = ["tool_calls", "name", "arguments"]


def answer_schema(spec: ToolSpec) -> dict[str, Any]:
    """The JSON Schema of an answer that calls the callable tools of `spec`."""
    items = [{"type": "object", "additionalProperties": False, "required": ["name", "arguments"],
              "properties": {"name": {"const": tool.name}, "arguments": tool.parameters}}
             for tool in spec.callable]
    calls: dict[str, Any] = {"type": "array", "minItems": 1, "items": items[0] if len(items) == 1 else {"anyOf": items}}
    if not spec.parallel:
        calls["maxItems"] = 1
    return {"type": "object", "additionalProperties": False, "required": ["tool_calls"],
            "properties": {"tool_calls": calls}}


def _tool_gbnf(schema: dict[str, Any], name: str) -> str:
    from llama_cpp import llama_grammar  # the runner has imported llama_cpp already

    try:
        return str(llama_grammar.json_schema_to_gbnf(json.dumps(schema), prop_order=PROPERTY_ORDER))
    except (ValueError, KeyError, TypeError, AssertionError, NotImplementedError, RecursionError) as exc:
        raise ToolError(f"tool '{name}': its parameters use JSON Schema this server cannot turn into a grammar "
                        f"({type(exc).__name__}: {exc})", "tools", "unsupported_schema") from exc


def check_convertible(spec: ToolSpec) -> None:
    """Raise ToolError naming the first tool whose parameters cannot become a grammar."""
    for tool in spec.tools:
        probe = ToolSpec((tool,), "required", None, spec.parallel)
        _tool_gbnf(answer_schema(probe), tool.name)


def call_grammar(spec: ToolSpec) -> str | None:
    """GBNF for an answer that must call a tool, in the generic answer format whatever the prompt
    format (calls.py reads both); None when the answer may be text."""
    if not spec.must_call or not spec.callable:
        return None
    return _tool_gbnf(answer_schema(spec), spec.forced or "tools")
