"""Tool definitions, history, the generic prompt, the grammar and reading answers back (no model)."""

from __future__ import annotations

import json

import pytest

from app.core.tools.calls import looks_like_call, may_become_call, read_answer
from app.core.tools.grammar import answer_schema, call_grammar, check_convertible
from app.core.tools.history import assistant_calls, check_tool_results
from app.core.tools.prompt import generic_messages, template_has_tools
from app.core.tools.spec import MAX_TOOLS, ToolError, tool_spec

ADD = {"type": "function", "function": {"name": "add", "description": "Add two integers", "parameters": {
    "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer", "minimum": 0}},
    "required": ["a", "b"]}}}
WEATHER = {"type": "function", "function": {"name": "weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def test_a_spec_takes_the_openai_choices() -> None:
    assert tool_spec(None) is None
    spec = tool_spec([ADD, WEATHER])
    assert spec is not None and spec.choice == "auto" and not spec.must_call and spec.parallel
    required = tool_spec([ADD, WEATHER], "required", False)
    assert required is not None and required.must_call and not required.parallel
    named = tool_spec([ADD, WEATHER], {"type": "function", "function": {"name": "weather"}})
    assert named is not None and [t.name for t in named.callable] == ["weather"] and named.must_call
    none = tool_spec([ADD], "none")
    assert none is not None and none.callable == () and none.summary()["offered"] == 1


@pytest.mark.parametrize(("tools", "choice", "words"), [
    ([{"type": "function", "function": {"name": "bad", "parameters": {"type": "object", "properties": 3}}}],
     None, "tool 'bad'"),
    ([{"type": "function", "function": {"name": "bad", "parameters": {"type": "nonsense"}}}], None, "not a valid JSON Schema"),
    ([{"type": "function", "function": {"name": "bad", "parameters": {"type": "string"}}}], None, "must describe an object"),
    ([{"type": "function", "function": {"name": "bad", "parameters": {
        "type": "object", "properties": {"x": {"$ref": "https://example.com/schema.json"}}}}}], None, "refers outside"),
    ([{"type": "function", "function": {"name": "has space"}}], None, "function.name"),
    ([ADD, ADD], None, "two tools are named 'add'"),
    ([ADD], {"type": "function", "function": {"name": "missing"}}, "not among the tools"),
    ([ADD], "sometimes", "tool_choice must be"),
    (None, "required", "tool_choice needs tools"),
    ([ADD] * (MAX_TOOLS + 1), None, f"{MAX_TOOLS} at most"),
    ([{"type": "function", "function": {"name": f"t{i}", "description": "x" * 4000}} for i in range(100)], None,
     "bytes of JSON"),
])
def test_a_bad_definition_is_refused_by_name(tools: object, choice: object, words: str) -> None:
    with pytest.raises(ToolError, match=words.replace("(", r"\(").replace(")", r"\)")):
        tool_spec(tools, choice)


def test_tool_results_must_answer_an_earlier_call() -> None:
    calls = assistant_calls([{"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a":1}'}}],
                            "messages[1].tool_calls")
    history = [(0, {"role": "user", "content": "hi"}), (1, {"role": "assistant", "content": "", "tool_calls": calls}),
               (2, {"role": "tool", "content": "3", "tool_call_id": "c1"})]
    check_tool_results(history)
    assert history[2][1]["name"] == "add"
    with pytest.raises(ToolError, match=r"messages\[3\] answers tool call \"c9\""):
        check_tool_results([*history, (3, {"role": "tool", "content": "?", "tool_call_id": "c9"})])
    with pytest.raises(ToolError, match="arguments must be a JSON string"):
        assistant_calls([{"id": "c", "function": {"name": "add", "arguments": 5}}], "m")


def test_the_generic_format_lists_tools_and_rewrites_the_history() -> None:
    spec = tool_spec([ADD], "required", False)
    messages = generic_messages([
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+3?"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "name": "add", "arguments": '{"a":2,"b":3}'}]},
        {"role": "tool", "content": "5", "tool_call_id": "c1", "name": "add"}], spec)
    assert messages[0]["content"].startswith("Be brief.\n\nYou can call these tools.")
    assert '"name": "add"' in messages[0]["content"] and "one or more of these tools" in messages[0]["content"]
    assert json.loads(messages[2]["content"]) == {"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}
    assert messages[3] == {"role": "user", "content": "Result of the tool add (call c1):\n5"}
    assert all(set(m) == {"role", "content"} for m in messages)


def test_templates_with_and_without_tools() -> None:
    assert not template_has_tools("{% for message in messages %}{{ message['content'] }}{% endfor %}")
    assert template_has_tools("{% if tools %}{{ tools | tojson }}{% endif %}{{ message.tool_calls }}")


def test_the_grammar_covers_the_callable_tools() -> None:
    spec = tool_spec([ADD, WEATHER], {"type": "function", "function": {"name": "weather"}}, False)
    assert spec is not None
    schema = answer_schema(spec)
    assert schema["properties"]["tool_calls"]["items"]["properties"]["name"] == {"const": "weather"}
    assert schema["properties"]["tool_calls"]["maxItems"] == 1
    gbnf = call_grammar(spec)
    assert gbnf is not None and '\\"weather\\"' in gbnf and "add" not in gbnf
    assert call_grammar(tool_spec([ADD])) is None  # auto: the answer may be text
    check_convertible(spec)


def test_answers_are_read_and_checked() -> None:
    spec = tool_spec([ADD, WEATHER])
    assert spec is not None
    outcome = read_answer(spec, '{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}', "stop")
    assert outcome.error is None and [(c.name, json.loads(c.arguments)) for c in outcome.calls] == [("add", {"a": 2, "b": 3})]
    assert outcome.calls[0].id.startswith("call_")
    hermes = read_answer(spec, '<tool_call>\n{"name": "weather", "arguments": {"city": "Oslo"}}\n</tool_call>', "stop")
    assert [c.name for c in hermes.calls] == ["weather"]
    assert read_answer(spec, "Five.", "stop").content == "Five."
    assert "minimum" in (read_answer(spec, '{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": -3}}]}',
                                     "stop").error or "")
    assert "not a tool" in (read_answer(spec, '{"tool_calls": [{"name": "rm", "arguments": {}}]}', "stop").error or "")
    assert "cut off" in (read_answer(spec, '{"tool_calls": [{"name": "add", "argu', "length").error or "")
    required = tool_spec([ADD], "required")
    assert required is not None and "required" in (read_answer(required, "Five.", "stop").error or "")


def test_a_stream_holds_back_what_may_be_a_call() -> None:
    assert may_become_call("") and may_become_call(" {") and may_become_call('{"tool')
    assert looks_like_call('{ "tool_calls": [') and looks_like_call("<tool_call>")
    assert not may_become_call("The answer") and not may_become_call('{"answer"')


def test_an_auto_answer_is_watched_until_it_is_prose_or_a_call() -> None:
    """CallWatch releases prose as it came once it cannot be a call, and gives up (None) on the piece
    that makes the answer look like a call, so the runner samples it again under the grammar."""
    from app.core.models.constraints import CallWatch

    prose = CallWatch()
    assert prose.feed("p1", " ") == [] and prose.feed("p2", "{") == []
    assert prose.feed("p3", '"answer') == ["p1", "p2", "p3"] and not prose.deciding
    assert prose.feed("p4", " more") == ["p4"]
    call = CallWatch()
    assert call.feed("c1", '{"tool') == [] and call.feed("c2", '_calls":') is None
    hermes = CallWatch()
    assert hermes.feed("h1", "<tool_") == [] and hermes.feed("h2", "call>") is None
    short = CallWatch()
    assert short.feed("s1", "{") == [] and short.release() == ["s1"] and not short.deciding


def test_the_audit_counts_tool_use_from_the_ledgers_meta() -> None:
    """Rows the server writes carry meta.tools; the audit counts requests with tools and answers
    that called one per workflow, and the report shows both."""
    import numpy as np

    from app.core.audit.patterns import load_library
    from app.core.audit.report import _signal_rows
    from app.core.audit.signals import FLAG_TOOL, FLAG_TOOL_CALL, generation_flags, request_params, workflow_signals

    library = load_library()
    offered = {"meta": {"server": {"n": 1}, "tools": {"offered": 2, "names": ["add", "weather"], "choice": "required",
                                                      "calls": 1}}, "params": {}, "messages": []}
    answered = {"meta": {"tools": {"offered": 0, "history_calls": 1, "results": 1, "calls": 0}}, "params": {},
                "messages": [{"role": "tool", "content": "5", "tool_call_id": "c1"}]}
    plain = {"meta": {"server": {"n": 1}}, "params": {}, "messages": []}
    params = [request_params(row) for row in (offered, answered, plain)]
    assert params[0]["tools"] == ["add", "weather"] and params[0]["tool_choice"] == "required"
    flags = [generation_flags(library, row, "What is 2 plus 3?", p) for row, p in zip((offered, answered, plain), params)]
    assert [bool(f & FLAG_TOOL) for f in flags] == [True, True, False]
    assert [bool(f & FLAG_TOOL_CALL) for f in flags] == [True, False, False]
    signals = workflow_signals(["2026-12-01T10:00:00"] * 3, flags, ["a", "b", "c"], [None] * 3, [None] * 3,
                               np.eye(3, dtype=np.float32))
    assert signals.tool_requests == 2 and signals.tool_call_answers == 1
    assert ("requests with tools", "2") in _signal_rows(signals.as_dict())
