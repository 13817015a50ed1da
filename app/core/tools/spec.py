"""The tools a request offers and how the model may use them, checked before anything runs.

Tool definitions come from clients we do not control, so each is checked here: a name the model can
write, parameters that are a JSON Schema of an object (jsonschema's own meta-schema check), and
limits on how many and how large, so that a request cannot make the prompt or the grammar huge.
A ToolError names the offending tool by its index and its parameter path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

MAX_TOOLS = 128  # more than any agent framework sends; 1,000 tools would not fit a small model's context
MAX_TOOLS_BYTES = 256 * 1024  # of the tools' JSON, all together
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # OpenAI's rule for function names
CHOICES = ("auto", "none", "required")
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


class ToolError(ValueError):
    """A tool definition, tool choice or tool message that cannot be served; `param` says where."""

    def __init__(self, message: str, param: str, code: str = "invalid_tools") -> None:
        super().__init__(message)
        self.param, self.code = param, code


@dataclass(frozen=True)
class Tool:
    """One function the model may call: its name, what it does, and a JSON Schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]

    def as_openai(self) -> dict[str, Any]:
        """The tool as OpenAI's {"type": "function", "function": {...}} (what chat templates expect)."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}

    def as_listing(self) -> dict[str, Any]:
        """The tool as the generic prompt lists it."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


@dataclass(frozen=True)
class ToolSpec:
    """What a request offers: the tools, the choice (auto, none, required, or `forced`, one tool's
    name) and whether several calls may come in one answer."""

    tools: tuple[Tool, ...]
    choice: str
    forced: str | None = None
    parallel: bool = True

    @property
    def callable(self) -> tuple[Tool, ...]:
        """The tools the model may call in this answer: none for 'none', the forced one, else all."""
        if self.choice == "none":
            return ()
        if self.forced is not None:
            return tuple(t for t in self.tools if t.name == self.forced)
        return self.tools

    @property
    def must_call(self) -> bool:
        """Whether the answer has to be a tool call (required, or one tool forced)."""
        return self.choice == "required" or self.forced is not None

    def tool(self, name: str) -> Tool | None:
        """The offered tool called `name`, if any."""
        return next((t for t in self.tools if t.name == name), None)

    def summary(self) -> dict[str, Any]:
        """What the ledger row says about the tools (the definitions in full: they are bounded)."""
        return {"offered": len(self.tools), "names": [t.name for t in self.tools],
                "choice": self.forced and {"function": self.forced} or self.choice, "parallel": self.parallel,
                "definitions": [t.as_listing() for t in self.tools]}


def _outside_ref(schema: Any) -> str | None:
    """The first $ref in `schema` that points outside it (a URL or a file), if any."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref is not None and not (isinstance(ref, str) and ref.startswith("#")):
                return str(ref)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


def _check_schema(schema: Any, where: str, name: str) -> dict[str, Any]:
    """`schema` if it is a JSON Schema of an object whose references stay inside it (llama.cpp's
    grammar converter would fetch an https $ref: a request must not make the server reach out);
    ToolError naming the tool otherwise."""
    from jsonschema import SchemaError, validators

    if schema is None:
        return dict(EMPTY_PARAMETERS)
    if not isinstance(schema, dict):
        raise ToolError(f"tool '{name}': {where} must be a JSON Schema object", where)
    try:
        validators.validator_for(schema, default=validators.Draft202012Validator).check_schema(schema)
    except SchemaError as exc:
        path = "/".join(str(p) for p in exc.path) or "(root)"
        raise ToolError(f"tool '{name}': {where} is not a valid JSON Schema (at {path}: {exc.message})",
                        where) from exc
    outside = _outside_ref(schema)
    if outside is not None:
        raise ToolError(f"tool '{name}': {where} refers outside itself ($ref {json.dumps(outside)[:80]}); only "
                        "references within the schema (#/...) are followed", where)
    if schema.get("type", "object") != "object":
        raise ToolError(f"tool '{name}': {where} must describe an object (\"type\": \"object\"), "
                        f"got {json.dumps(schema.get('type'))}", where)
    return schema


def _tool(raw: Any, index: int) -> Tool:
    where = f"tools[{index}]"
    if not isinstance(raw, dict) or raw.get("type", "function") != "function" or not isinstance(raw.get("function"), dict):
        raise ToolError(f"{where} must be {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}", where)
    function = raw["function"]
    name = function.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ToolError(f"{where}.function.name must be 1 to 64 letters, digits, '_' or '-', got "
                        f"{json.dumps(name)[:80]}", f"{where}.function.name")
    description = function.get("description") or ""
    if not isinstance(description, str):
        raise ToolError(f"tool '{name}': {where}.function.description must be a string", f"{where}.function.description")
    parameters = _check_schema(function.get("parameters"), f"{where}.function.parameters", name)
    return Tool(name, description, parameters)


def _choice(raw: Any, tools: tuple[Tool, ...]) -> tuple[str, str | None]:
    if raw is None:
        return "auto", None
    if raw in CHOICES:
        return raw, None
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("function"), dict):
        name = raw["function"].get("name")
        if not any(t.name == name for t in tools):
            raise ToolError(f"tool_choice names the function {json.dumps(name)[:80]}, which is not among the tools",
                            "tool_choice", "invalid_tool_choice")
        return "function", name
    raise ToolError("tool_choice must be auto, none, required or {\"type\": \"function\", \"function\": "
                    "{\"name\": ...}}", "tool_choice", "invalid_tool_choice")


def tool_spec(tools: Any, choice: Any = None, parallel: Any = None) -> ToolSpec | None:
    """The checked ToolSpec of a request's `tools`, `tool_choice` and `parallel_tool_calls` (OpenAI
    chat shapes); None when it offers no tools and asks for none. Raises ToolError."""
    if tools in (None, []):
        if choice not in (None, "none", "auto"):
            raise ToolError("tool_choice needs tools", "tool_choice", "invalid_tool_choice")
        return None
    if not isinstance(tools, list):
        raise ToolError("tools must be a list", "tools")
    if len(tools) > MAX_TOOLS:
        raise ToolError(f"{len(tools)} tools is more than this server takes ({MAX_TOOLS} at most)", "tools",
                        "too_many_tools")
    size = len(json.dumps(tools, ensure_ascii=False).encode("utf-8"))
    if size > MAX_TOOLS_BYTES:
        raise ToolError(f"the tools take {size} bytes of JSON, more than this server takes "
                        f"({MAX_TOOLS_BYTES} at most)", "tools", "tools_too_large")
    parsed = tuple(_tool(raw, index) for index, raw in enumerate(tools))
    names = [t.name for t in parsed]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise ToolError(f"two tools are named '{duplicate}'", "tools")
    if parallel is not None and not isinstance(parallel, bool):
        raise ToolError("parallel_tool_calls must be a boolean", "parallel_tool_calls", "invalid_type")
    kind, forced = _choice(choice, parsed)
    return ToolSpec(parsed, "auto" if kind == "function" else kind, forced, parallel is not False)
