"""`stillroom proxy` in front of a real engine: llama-cpp-python's OpenAI-compatible server with the
bundled SmolLM2 model, driven by the official `openai` client through the proxy. Every answer is
the engine's, every request is one ledger row (source `proxy`) with the engine's address and the
model's identity (its GGUF sha256: the engine reports the file's path, which is readable here)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import openai
import pytest

from app.core.hashing import sha256_file
from app.core.models.chat_model import chat_model_path
from app.core.proxy.server import ProxyServer
from app.core.serve.server import WORKFLOW_HEADER
from app.core.store import Ledger
from tests.e2e.ledger_rows import rows
from tests.e2e.llama_upstream import EMBED_ALIAS, llama_server

CHAT = str(chat_model_path())
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with llama_server(tmp_path_factory.mktemp("llama-upstream")) as (url, _process):
        yield url


@pytest.fixture(scope="module")
def proxied(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProxyServer, Path]]:
    ledger_file = tmp_path_factory.mktemp("proxy") / "ledger.db"
    Ledger.open(ledger_file).close()
    server = ProxyServer(ledger_file, [upstream], port=0)
    server.start()
    try:
        yield server, ledger_file
    finally:
        server.stop()


def client_for(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key="not-needed", max_retries=0, timeout=120)


def workflow(name: str) -> dict[str, str]:
    return {WORKFLOW_HEADER: name}


def without_ids(data: dict) -> dict:
    """An answer less what the engine draws afresh each time (its id and clock)."""
    data = dict(data)
    data.pop("id", None)
    data.pop("created", None)
    for choice in data.get("choices") or []:
        for call in (choice.get("message") or {}).get("tool_calls") or []:
            call.pop("id", None)
    return data


def test_chat_is_answered_as_the_engine_answers_and_logged_with_the_file_sha256(proxied, upstream) -> None:
    server, ledger_file = proxied
    asked = dict(model=CHAT, messages=[{"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": "Name a color."}],
                 max_tokens=12, temperature=0, seed=3)
    with client_for(server.url) as via, client_for(upstream) as direct:
        through = via.chat.completions.with_raw_response.create(**asked, extra_headers=workflow("proxy-chat"))
        straight = direct.chat.completions.with_raw_response.create(**asked)
    assert through.http_response.status_code == 200
    assert without_ids(json.loads(through.http_response.content)) == without_ids(json.loads(straight.http_response.content))
    answer = through.parse()
    [row] = rows(ledger_file, "proxy-chat")
    assert row["source"] == "proxy" and row["status"] == "ok"
    assert row["model_sha256"] == sha256_file(CHAT)
    identity = row["meta"]["proxy"]["identity"]
    assert identity["method"] == "gguf-sha256" and identity["verified"] is True
    assert row["meta"]["proxy"]["upstream"] == upstream
    assert row["response"] == answer.choices[0].message.content
    assert row["system_prompt"] == "Be brief." and row["prompt"] == "Name a color."
    assert row["params"]["max_tokens"] == 12 and row["seed"] == 3
    assert row["prompt_tokens"] == answer.usage.prompt_tokens
    assert row["completion_tokens"] == answer.usage.completion_tokens


def test_a_stream_passes_chunk_by_chunk_and_its_text_is_logged(proxied, upstream) -> None:
    server, ledger_file = proxied
    asked = dict(model=CHAT, messages=[{"role": "user", "content": "Count to five."}], max_tokens=16,
                 temperature=0, seed=1, stream=True)
    with client_for(server.url) as via, client_for(upstream) as direct:
        through = list(via.chat.completions.create(**asked, extra_headers=workflow("proxy-stream")))
        straight = list(direct.chat.completions.create(**asked))
    texts = ["".join(c.choices[0].delta.content or "" for c in chunks if c.choices) for chunks in (through, straight)]
    assert texts[0] == texts[1] and texts[0]
    assert len(through) == len(straight) > 3  # one event per token, as the engine sent them
    [row] = rows(ledger_file, "proxy-stream")
    assert row["status"] == "ok" and row["response"] == texts[0]
    assert row["meta"]["proxy"]["stream"] is True and row["meta"]["proxy"]["partial"] is False
    assert row["finish_reason"] == "length" and row["ttft_ms"] > 0


def test_completions_and_embeddings_pass_through_and_are_logged(proxied, upstream) -> None:
    server, ledger_file = proxied
    with client_for(server.url) as via, client_for(upstream) as direct:
        done = via.completions.create(model=CHAT, prompt="One, two,", max_tokens=6, temperature=0,
                                      extra_headers=workflow("proxy-completion"))
        again = direct.completions.create(model=CHAT, prompt="One, two,", max_tokens=6, temperature=0)
        vectors = via.embeddings.create(model=EMBED_ALIAS, input=["first text", "second"],
                                        extra_headers=workflow("proxy-embed"))
    assert done.choices[0].text == again.choices[0].text
    [row] = rows(ledger_file, "proxy-completion")
    assert (row["mode"], row["prompt"], row["response"]) == ("completion", "One, two,", done.choices[0].text)
    assert len(vectors.data) == 2
    [embedded] = rows(ledger_file, "proxy-embed")
    assert embedded["mode"] == "embedding" and embedded["prompt"] == "first text\nsecond"
    assert embedded["meta"]["embedding"]["count"] == 2
    assert embedded["meta"]["proxy"]["identity"]["method"] == "reported-name"  # an alias names no file
    assert embedded["meta"]["proxy"]["identity"]["verified"] is False


def test_tool_calls_pass_through_and_are_logged(proxied) -> None:
    server, ledger_file = proxied
    with client_for(server.url) as via:
        answer = via.chat.completions.create(
            model=CHAT, messages=[{"role": "user", "content": "What is the weather in Paris?"}], max_tokens=40,
            temperature=0, tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}},
            extra_headers=workflow("proxy-tools"))
    [call] = answer.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    [row] = rows(ledger_file, "proxy-tools")
    assert row["meta"]["tools"] == {"calls": 1} and row["finish_reason"] == "tool_calls"
    assert json.loads(row["response"])[0]["function"]["name"] == "get_weather"
    assert row["params"]["tools"][0]["function"]["name"] == "get_weather"


def test_an_engine_error_reaches_the_client_unchanged_and_is_an_error_row(proxied, upstream) -> None:
    server, ledger_file = proxied
    bad = {"model": CHAT, "messages": "not a list"}
    through = httpx.post(f"{server.url}/chat/completions", json=bad, headers=workflow("proxy-bad"), timeout=60)
    straight = httpx.post(f"{upstream}/chat/completions", json=bad, timeout=60)
    assert through.status_code == straight.status_code >= 400
    assert through.content == straight.content
    [row] = rows(ledger_file, "proxy-bad")
    assert row["status"] == "error" and f"HTTP {straight.status_code}" in row["error"]


def test_models_are_listed_by_the_engine(proxied, upstream) -> None:
    through = httpx.get(f"{proxied[0].url}/models", timeout=30)
    assert through.content == httpx.get(f"{upstream}/models", timeout=30).content


def test_an_engine_that_dies_mid_stream_is_logged_as_partial(tmp_path: Path) -> None:
    ledger_file = tmp_path / "ledger.db"
    Ledger.open(ledger_file).close()
    with llama_server(tmp_path, embeddings=False) as (url, process):
        server = ProxyServer(ledger_file, [url], port=0)
        server.start()
        try:
            received: list[str] = []
            with client_for(server.url) as via, pytest.raises((openai.APIError, httpx.HTTPError)):
                stream = via.chat.completions.create(
                    model=CHAT, messages=[{"role": "user", "content": "Write a long story about a ship."}],
                    max_tokens=400, temperature=0.7, stream=True, extra_headers=workflow("proxy-dies"))
                for chunk in stream:
                    received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
                    if len(received) == 5:
                        process.kill()
            assert len(received) >= 5
        finally:
            server.stop()
    [row] = rows(ledger_file, "proxy-dies")
    assert row["status"] == "error" and row["error"].startswith("partial answer:")
    assert row["meta"]["proxy"]["partial"] is True
    assert row["response"].startswith("".join(received[:5]))


def test_a_down_engine_gets_502_at_once_and_an_error_row(tmp_path: Path) -> None:
    from tests.e2e.llama_upstream import free_port
    ledger_file = tmp_path / "ledger.db"
    Ledger.open(ledger_file).close()
    down = f"http://127.0.0.1:{free_port()}/v1"
    server = ProxyServer(ledger_file, [down], port=0)
    server.start()
    try:
        started = time.monotonic()
        with client_for(server.url) as via, pytest.raises(openai.APIStatusError) as raised:
            via.chat.completions.create(model="anything", messages=[{"role": "user", "content": "hi"}],
                                        extra_headers=workflow("proxy-down"))
        assert time.monotonic() - started < 5
    finally:
        server.stop()
    assert raised.value.status_code == 502
    assert down in raised.value.message and "cannot connect" in raised.value.message
    [row] = rows(ledger_file, "proxy-down")
    assert row["status"] == "error" and "cannot connect" in row["error"]
    assert row["meta"]["proxy"]["identity"]["method"] == "reported-name"


def test_proxied_traffic_is_audited_and_traced_with_how_each_model_was_known(proxied, tmp_path: Path) -> None:
    """The audit names each workflow's models and how they were identified; a dataset made of
    proxied answers traces to the ledger, and its statement and card say the same."""
    from app.core.audit.embeddings import Encoder
    from app.core.audit.patterns import load_library
    from app.core.audit.report import to_markdown
    from app.core.audit.run import run_audit
    from app.core.progress import drive
    from app.core.provenance.card import render_card
    from app.core.provenance.match import run_match
    from app.core.provenance.statement import Declared, build_statement

    server, ledger_file = proxied
    with client_for(server.url) as via:
        for topic in ("rivers", "bread", "clocks"):
            via.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": f"One fact about {topic}."}],
                                        max_tokens=16, temperature=0, extra_headers=workflow("proxy-audited"))
        via.embeddings.create(model=EMBED_ALIAS, input="a reported-name row", extra_headers=workflow("proxy-audited"))
    ledger = Ledger.open(ledger_file)
    try:
        result = drive(run_audit(ledger.db, Encoder(), load_library(), workflows=["proxy-audited"]))
    finally:
        ledger.close()
    [audited] = result.workflows
    assert audited.generations == 4
    by_how = {m["identified_by"]: m for m in audited.models}
    assert by_how["gguf-sha256"]["generations"] == 3 and by_how["gguf-sha256"]["identity"] == sha256_file(CHAT)
    assert by_how["reported-name"]["name"] == EMBED_ALIAS and by_how["reported-name"]["verified"] is False
    assert "identified by gguf-sha256" in to_markdown(result) and "identified by reported-name, unverified" in to_markdown(result)

    logged = [row for row in rows(ledger_file, "proxy-audited") if row["mode"] == "chat"]
    dataset = tmp_path / "proxied.jsonl"
    dataset.write_text("".join(json.dumps({"prompt": r["prompt"], "response": r["response"]}) + "\n" for r in logged))
    statement = build_statement(run_match(dataset, ledger_file), ledger_file, Declared(), screen=False)
    [model] = statement["models"]
    assert model["sha256"] == sha256_file(CHAT) and model["identified_by"] == "gguf-sha256"
    assert model["generations"] == 3
    card = render_card(statement, dataset.name)
    assert f"GGUF sha256 `{sha256_file(CHAT)}`" in card and "as that engine identified them" not in card
