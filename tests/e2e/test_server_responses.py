"""/v1/responses through the official `openai` client (client.responses), against the real server
and the bundled chat model: text, instructions, streaming events, and the ledger row of each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from app.core.serve.server import StillroomServer
from app.core.store import open_db
from app.core.store.queries import LogFilter, list_generations
from tests.conftest import make_home, running_server

CHAT_MODEL = "SmolLM2-135M-Instruct.Q4_1"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, model_store: Path) -> Iterator[tuple[StillroomServer, Path]]:
    with running_server(make_home(tmp_path_factory.mktemp("responses") / "home", model_store)) as served:
        yield served


@pytest.fixture
def client(served: tuple[StillroomServer, Path]) -> openai.OpenAI:
    return openai.OpenAI(base_url=served[0].url, api_key="not-needed-on-loopback", max_retries=0, timeout=120)


def rows(ledger_file: Path, workflow: str) -> list[dict]:
    db = open_db(ledger_file, readonly=True)
    try:
        return list_generations(db, LogFilter(workflow=workflow), limit=None)
    finally:
        db.close()


def test_text_input_gets_a_response_object_and_one_row(client: openai.OpenAI,
                                                       served: tuple[StillroomServer, Path]) -> None:
    response = client.responses.create(model="default", input="Name a colour.", max_output_tokens=12,
                                       temperature=0.2, extra_headers={"X-Stillroom-Workflow": "resp-text"})
    assert response.object == "response" and response.id.startswith("resp_")
    assert response.status in ("completed", "incomplete") and response.model == CHAT_MODEL
    message = response.output[0]
    assert message.type == "message" and message.role == "assistant" and message.content[0].type == "output_text"
    assert response.output_text and response.output_text == message.content[0].text
    assert response.usage.output_tokens >= 1 and response.usage.input_tokens > 5
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    logged = rows(served[1], "resp-text")
    assert len(logged) == 1
    row = logged[0]
    assert row["source"] == "server" and row["mode"] == "chat" and row["response"] == response.output_text
    assert row["meta"]["server"]["api"] == "responses" and row["meta"]["server"]["endpoint"] == "/v1/responses"
    assert row["params"]["max_tokens"] <= 12 and row["params"]["temperature"] == 0.2


def test_instructions_and_input_items_become_the_conversation(client: openai.OpenAI,
                                                              served: tuple[StillroomServer, Path]) -> None:
    response = client.responses.create(
        model=CHAT_MODEL, instructions="Answer in one word.", max_output_tokens=8,
        input=[{"role": "user", "content": "Is water wet?"},
               {"role": "assistant", "content": [{"type": "output_text", "text": "Yes."}]},
               {"role": "user", "content": [{"type": "input_text", "text": "Is fire hot?"}]}],
        extra_headers={"X-Stillroom-Workflow": "resp-items"})
    assert response.instructions == "Answer in one word." and response.output_text
    row = rows(served[1], "resp-items")[0]
    assert row["system_prompt"] == "Answer in one word."
    assert [(m["role"], m["content"]) for m in row["messages"][1:]] == [
        ("user", "Is water wet?"), ("assistant", "Yes."), ("user", "Is fire hot?")]


def test_streaming_sends_the_responses_events_in_order(client: openai.OpenAI,
                                                       served: tuple[StillroomServer, Path]) -> None:
    stream = client.responses.create(model="default", input="Tell me about rivers.", max_output_tokens=10,
                                     stream=True, extra_headers={"X-Stillroom-Workflow": "resp-stream"})
    events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[2:4] == ["response.output_item.added", "response.content_part.added"]
    assert kinds[-4:-1] == ["response.output_text.done", "response.content_part.done", "response.output_item.done"]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    done = next(event for event in events if event.type == "response.output_text.done")
    final = events[-1].response
    assert deltas and deltas == done.text == final.output_text
    assert final.usage.output_tokens >= 1
    logged = rows(served[1], "resp-stream")
    assert len(logged) == 1 and logged[0]["response"] == deltas and logged[0]["meta"]["server"]["stream"]


def test_the_stream_helper_accumulates_the_same_text(client: openai.OpenAI) -> None:
    """The helper wants response.completed; an answer cut at max_output_tokens ends with
    response.incomplete instead (as OpenAI's does), so this one has room to finish."""
    with client.responses.stream(model="default", input="Say hello.", max_output_tokens=48,
                                 extra_body={"seed": 2}) as stream:
        text = "".join(event.delta for event in stream if event.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text and final.output_text == text
