"""/v1/messages through the official `anthropic` client (messages.create and messages.stream),
against the real server and the bundled chat model, and the ledger row of each request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from app.core.serve.server import StillroomServer
from tests.conftest import make_home, running_server
from tests.e2e.ledger_rows import rows

CHAT_MODEL = "SmolLM2-135M-Instruct.Q4_1"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, model_store: Path) -> Iterator[tuple[StillroomServer, Path]]:
    with running_server(make_home(tmp_path_factory.mktemp("messages") / "home", model_store)) as served:
        yield served


@pytest.fixture
def client(served: tuple[StillroomServer, Path]) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=served[0].url.removesuffix("/v1"), api_key="not-needed-on-loopback",
                             max_retries=0, timeout=300) as client:
        yield client


def test_a_message_is_answered_and_logged(client: anthropic.Anthropic, served: tuple[StillroomServer, Path]) -> None:
    message = client.messages.create(
        model="default", max_tokens=12, system="Be brief.", extra_body={"temperature": 0.2},
        messages=[{"role": "user", "content": "Name a colour."}],
        extra_headers={"X-Stillroom-Workflow": "msg-text"})
    assert message.type == "message" and message.role == "assistant" and message.model == CHAT_MODEL
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 5 and message.usage.output_tokens >= 1
    logged = rows(served[1], "msg-text")
    assert len(logged) == 1
    row = logged[0]
    assert row["source"] == "server" and row["system_prompt"] == "Be brief."
    assert row["response"] == message.content[0].text
    assert row["meta"]["server"]["api"] == "messages" and row["meta"]["server"]["endpoint"] == "/v1/messages"
    assert row["meta"]["server"]["extras"]["anthropic_version"] and row["params"]["temperature"] == 0.2


def test_content_blocks_and_a_system_block_list(client: anthropic.Anthropic,
                                                served: tuple[StillroomServer, Path]) -> None:
    client.messages.create(
        model=CHAT_MODEL, max_tokens=6, system=[{"type": "text", "text": "Answer in one word."}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "Is water wet?"}]},
                  {"role": "assistant", "content": [{"type": "text", "text": "Yes."}]},
                  {"role": "user", "content": "Is fire hot?"}],
        stop_sequences=["\n\n"], extra_headers={"X-Stillroom-Workflow": "msg-blocks"})
    row = rows(served[1], "msg-blocks")[0]
    assert row["system_prompt"] == "Answer in one word."
    assert [(m["role"], m["content"]) for m in row["messages"][1:]] == [
        ("user", "Is water wet?"), ("assistant", "Yes."), ("user", "Is fire hot?")]
    assert "\n\n" in row["params"]["stop"]


def test_streaming_with_messages_stream(client: anthropic.Anthropic, served: tuple[StillroomServer, Path]) -> None:
    with client.messages.stream(model="default", max_tokens=10,
                                messages=[{"role": "user", "content": "Tell me about rivers."}],
                                extra_headers={"X-Stillroom-Workflow": "msg-stream"}) as stream:
        events = list(stream)
        final = stream.get_final_message()
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start" and kinds[1] == "content_block_start"
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    text = "".join(event.delta.text for event in events if event.type == "content_block_delta")
    assert text and final.content[0].text == text
    assert final.stop_reason in ("end_turn", "max_tokens") and final.usage.output_tokens >= 1
    assert final.usage.input_tokens > 5
    logged = rows(served[1], "msg-stream")
    assert len(logged) == 1 and logged[0]["response"] == text and logged[0]["meta"]["server"]["stream"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_stop_sequence_that_ends_the_answer_is_named(client: anthropic.Anthropic,
                                                        served: tuple[StillroomServer, Path], stream: bool) -> None:
    """stop_reason 'stop_sequence' and which one, as Anthropic's API reports it (llama.cpp cuts at the
    first stop string it meets without saying which; the runner reads it back from the sampled tokens)."""
    request = dict(model="default", max_tokens=40, extra_body={"temperature": 0}, stop_sequences=["7", "never-seen"],
                   messages=[{"role": "user", "content": "Count from 1 to 10, separated by commas."}],
                   extra_headers={"X-Stillroom-Workflow": f"msg-stop-{stream}"})
    if stream:
        with client.messages.stream(**request) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**request)
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "7"
    assert "6" in message.content[0].text and "7" not in message.content[0].text
    (row,) = rows(served[1], f"msg-stop-{stream}")
    assert row["runtime"]["stop_sequence"] == "7" and row["finish_reason"] == "stop"


def test_an_answer_that_ends_on_its_own_has_no_stop_sequence(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model="default", max_tokens=40, extra_body={"temperature": 0},
                                     stop_sequences=["never-seen"],
                                     messages=[{"role": "user", "content": "Say yes."}])
    assert message.stop_sequence is None and message.stop_reason in ("end_turn", "max_tokens")


WEATHER = {"name": "get_weather", "description": "The weather now in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def get_weather(city: str) -> str:
    return f"Sunny and 21 C in {city}"


def test_a_tool_use_and_tool_result_round_trip(client: anthropic.Anthropic,
                                               served: tuple[StillroomServer, Path]) -> None:
    """A client tool: the model must use one (tool_choice any), the client runs it and sends a
    tool_result block; each request is one row, the second with the call and its result."""
    question = {"role": "user", "content": "What is the weather in Paris?"}
    first = client.messages.create(model="default", max_tokens=48, tools=[WEATHER], tool_choice={"type": "any"},
                                   messages=[question], extra_headers={"X-Stillroom-Workflow": "msg-tools"})
    uses = [block for block in first.content if block.type == "tool_use"]
    assert first.stop_reason == "tool_use" and uses and uses[0].name == "get_weather"
    assert uses[0].id and isinstance(uses[0].input["city"], str)
    results = [{"type": "tool_result", "tool_use_id": use.id, "content": get_weather(**use.input)} for use in uses]
    second = client.messages.create(
        model="default", max_tokens=16, tools=[WEATHER], tool_choice={"type": "none"},
        messages=[question, {"role": "assistant", "content": first.content}, {"role": "user", "content": results}],
        extra_headers={"X-Stillroom-Workflow": "msg-tools"})
    assert second.content and second.content[0].type == "text" and second.stop_reason in ("end_turn", "max_tokens")
    logged = sorted(rows(served[1], "msg-tools"), key=lambda row: row["id"])
    assert len(logged) == 2 and all(row["meta"]["server"]["api"] == "messages" for row in logged)
    history = logged[1]["messages"]
    assistant = next(message for message in history if message.get("tool_calls"))
    assert [call["id"] for call in assistant["tool_calls"]] == [use.id for use in uses]
    assert [(m["tool_call_id"], m["content"]) for m in history if m["role"] == "tool"] == \
        [(result["tool_use_id"], result["content"]) for result in results]
    assert logged[0]["meta"]["tools"]["calls"] == len(uses) and logged[1]["meta"]["tools"]["results"] == len(uses)


def test_a_streamed_tool_use_arrives_as_input_json_deltas(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="default", max_tokens=48, tools=[WEATHER],
                                tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
                                messages=[{"role": "user", "content": "Weather in Oslo?"}]) as stream:
        events = list(stream)
        final = stream.get_final_message()
    start = next(event for event in events if event.type == "content_block_start")
    assert start.content_block.type == "tool_use" and start.content_block.name == "get_weather"
    deltas = [event.delta for event in events if event.type == "content_block_delta"]
    assert deltas and all(delta.type == "input_json_delta" for delta in deltas)
    assert final.stop_reason == "tool_use" and [block.type for block in final.content] == ["tool_use"]
    assert isinstance(final.content[0].input["city"], str)
