"""What shapes an answer before it is sampled: the prompt's tool format and the grammar.

The runner asks here which messages and tools to render (the chat template's own tool format when the
GGUF has one, else the generic format of app.core.tools.prompt) and which grammar to sample under: a
tool call that must be made, explicit GBNF, or an OpenAI-style response_format.

`tool_choice` auto is constrained lazily (CallWatch): the answer is sampled freely, its first pieces
held back while they could still begin a tool call; prose is then released as it came, and an answer
that begins like a call is sampled again under the tools' grammar, so the call the model chose to make
has arguments that parse and follow the schema. Constraining every auto answer from its first token
would cost the grammar's price (about five times slower per token here, see app/core/tools/grammar.py)
on every prose answer too.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from app.core.models.chat_format import TEMPLATE
from app.core.models.sampling import GenerationRequest
from app.core.tools.calls import looks_like_call, may_become_call
from app.core.tools.grammar import call_grammar
from app.core.tools.prompt import generic_messages, template_has_tools, template_messages
from app.core.tools.spec import ToolSpec


def tool_prompt(request: GenerationRequest, chat_format: str,
                template: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """The messages to render and the tools to hand the template: the template's own tool format
    when it has one, else the generic format (app.core.tools.prompt)."""
    messages = request.full_messages()
    if not request.uses_tools():
        return messages, None
    if chat_format == TEMPLATE and template_has_tools(template):
        callable_tools = request.tools.callable if request.tools is not None else ()
        return template_messages(messages), [t.as_openai() for t in callable_tools] or None
    return generic_messages(messages, request.tools), None


def grammar_for(gbnf: str | None, response_format: dict[str, Any] | None, tool_gbnf: str | None = None) -> Any:
    """A LlamaGrammar from a tool call that must be made, explicit GBNF, or an OpenAI-style
    response_format (json_object or json_schema); None for plain text."""
    from llama_cpp import LlamaGrammar, llama_grammar

    if tool_gbnf:
        return LlamaGrammar.from_string(tool_gbnf, verbose=False)
    if gbnf:
        return LlamaGrammar.from_string(gbnf, verbose=False)
    kind = (response_format or {}).get("type", "text")
    if kind == "json_object":
        return LlamaGrammar.from_string(llama_grammar.JSON_GBNF, verbose=False)
    if kind == "json_schema":
        schema = (response_format or {}).get("json_schema", {}).get("schema", {})
        return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    return None


def request_grammar(request: GenerationRequest) -> Any:
    """The grammar a request's answer is sampled under from its first token (None: free text)."""
    params = request.params
    return grammar_for(params.grammar, params.response_format,
                       call_grammar(request.tools) if request.tools is not None else None)


def lazy_call_spec(request: GenerationRequest) -> ToolSpec | None:
    """For an answer that may call a tool but need not (auto), and has no grammar of its own: the
    spec whose grammar constrains it once it begins like a call. None otherwise."""
    spec = request.tools
    if request.mode != "chat" or spec is None or not spec.callable or spec.must_call:
        return None
    if request.params.grammar or (request.params.response_format or {}).get("type", "text") != "text":
        return None
    return replace(spec, choice="required")


class CallWatch:
    """Holds back the first pieces of a free answer while they could still begin a tool call.

    feed() returns the pieces to release now ([] while deciding), or None once the answer has begun
    like a call: the caller then samples again under the call grammar. release() returns what is still
    held when the answer ends (a short answer that never decided)."""

    def __init__(self) -> None:
        self.deciding = True
        self._held: list[Any] = []

    def feed(self, piece: Any, text: str) -> list[Any] | None:
        """Watch one piece (`text` is its text)."""
        if not self.deciding:
            return [piece]
        self._held.append((piece, text))
        so_far = "".join(t for _, t in self._held)
        if looks_like_call(so_far):
            return None
        if may_become_call(so_far):
            return []
        return self.release()

    def release(self) -> list[Any]:
        """Stop watching; the pieces held so far."""
        self.deciding = False
        held, self._held = [p for p, _ in self._held], []
        return held
