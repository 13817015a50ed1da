"""/v1/messages through the official `anthropic` client (messages.create and messages.stream),
against the real server and the bundled chat model, and the ledger row of each request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from app.core.serve.server import StillroomServer
from app.core.store import open_db
from app.core.store.queries import LogFilter, list_generations
from tests.conftest import make_home, running_server

CHAT_MODEL = "SmolLM2-135M-Instruct.Q4_1"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, model_store: Path) -> Iterator[tuple[StillroomServer, Path]]:
    with running_server(make_home(tmp_path_factory.mktemp("messages") / "home", model_store)) as served:
        yield served


@pytest.fixture
def client(served: tuple[StillroomServer, Path]) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=served[0].url.removesuffix("/v1"), api_key="not-needed-on-loopback",
                               max_retries=0, timeout=120)


def rows(ledger_file: Path, workflow: str) -> list[dict]:
    db = open_db(ledger_file, readonly=True)
    try:
        return list_generations(db, LogFilter(workflow=workflow), limit=None)
    finally:
        db.close()


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
