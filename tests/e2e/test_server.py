"""The local server, exercised by the real `openai` client over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from app.core.models.bundled import SMOLLM2_SAMPLING
from app.core.serve.api_keys import create_key
from app.core.serve.server import StillroomServer, is_loopback
from app.core.store import Ledger, open_db
from app.core.store.queries import LogFilter, list_generations
from tests.conftest import make_home, running_server

MODEL = "gemma-3-270m-q4_k_m"
CHAT_MODEL = "SmolLM2-135M-Instruct.Q4_1"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, model_store: Path) -> Iterator[tuple[StillroomServer, Path]]:
    with running_server(make_home(tmp_path_factory.mktemp("server") / "home", model_store)) as served:
        yield served


@pytest.fixture
def client(served: tuple[StillroomServer, Path]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=served[0].url, api_key="not-needed-on-loopback", max_retries=0, timeout=120) as client:
        yield client  # closed, so no pooled socket is left for the garbage collector to warn about


def rows(ledger_file: Path, **filters: str) -> list[dict]:
    db = open_db(ledger_file, readonly=True)
    try:
        return list_generations(db, LogFilter(**filters), limit=None)
    finally:
        db.close()


def test_models_lists_every_registered_model(client: openai.OpenAI) -> None:
    models = client.models.list().data
    assert [m.id for m in models] == [CHAT_MODEL, MODEL, "all-MiniLM-L6-v2"]  # chat, Gemma, the encoder
    extra = [m.model_extra["stillroom"] for m in models]
    assert [e["default_for"] for e in extra] == ["chat", "completion", "embedding"]
    assert [e["kind"] for e in extra] == ["generation", "generation", "embedding"]
    assert [e["license"] for e in extra] == ["apache-2.0", "gemma", "apache-2.0"]


def test_a_request_naming_a_model_gets_that_model(client: openai.OpenAI, served: tuple[StillroomServer, Path]) -> None:
    """One model is loaded at a time: each request for the other one switches it, and every row
    records the sha256 of the model that answered."""
    shas = {m.id: m.model_extra["stillroom"]["sha256"] for m in client.models.list().data}
    asks = [(CHAT_MODEL, "chat"), (MODEL, "chat"), ("default", "chat"), ("default", "completions"),
            (shas[CHAT_MODEL][:12], "completions")]
    expected = [shas[CHAT_MODEL], shas[MODEL], shas[CHAT_MODEL], shas[MODEL], shas[CHAT_MODEL]]
    for index, (name, endpoint) in enumerate(asks):
        headers = {"X-Stillroom-Workflow": f"switch-{index}"}
        if endpoint == "chat":
            answer = client.chat.completions.create(model=name, max_tokens=24, seed=4, extra_headers=headers,
                                                    messages=[{"role": "user", "content": "What is 2 + 2?"}])
            assert answer.choices[0].message.content
        else:
            answer = client.completions.create(model=name, prompt="Two and two make", max_tokens=4, seed=4,
                                               extra_headers=headers)
            assert answer.choices[0].text
        assert answer.model == next(m for m, sha in shas.items() if sha == expected[index])
        logged = rows(served[1], workflow=f"switch-{index}")
        assert [row["model_sha256"] for row in logged] == [expected[index]]
    assert served[0].model_host.loaded.sha256 == shas[CHAT_MODEL]  # the last request's model stays loaded


def test_chat_model_defaults_apply_where_the_request_is_silent(client: openai.OpenAI,
                                                               served: tuple[StillroomServer, Path]) -> None:
    client.chat.completions.create(model="default", max_tokens=8, seed=1, temperature=0.5,
                                   messages=[{"role": "user", "content": "Hi"}],
                                   extra_headers={"X-Stillroom-Workflow": "chat-defaults"})
    params = rows(served[1], workflow="chat-defaults")[0]["params"]
    assert params["temperature"] == 0.5  # what the client sent
    assert {k: params[k] for k in SMOLLM2_SAMPLING if k != "temperature"} == \
        {k: v for k, v in SMOLLM2_SAMPLING.items() if k != "temperature"}  # the model's own for the rest


def test_completion_is_answered_and_logged(client: openai.OpenAI, served: tuple[StillroomServer, Path]) -> None:
    result = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=8, seed=3,
                                       temperature=0.7, extra_headers={"X-Stillroom-Workflow": "completions-test"})
    assert result.object == "text_completion" and result.choices[0].text
    assert result.usage.completion_tokens == 8 and result.usage.prompt_tokens == 6
    logged = rows(served[1], workflow="completions-test")
    assert len(logged) == 1
    row = logged[0]
    assert row["source"] == "server" and row["response"] == result.choices[0].text
    assert row["params"]["seed"] == 3 and row["params"]["temperature"] == 0.7
    assert row["meta"]["server"]["endpoint"] == "/v1/completions"


def test_chat_completion_and_default_workflow(client: openai.OpenAI, served: tuple[StillroomServer, Path]) -> None:
    before = len(rows(served[1], workflow="api"))
    result = client.chat.completions.create(
        model="default", max_tokens=12, seed=5,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}])
    assert result.object == "chat.completion" and result.choices[0].message.role == "assistant"
    assert result.choices[0].finish_reason in ("stop", "length")
    logged = rows(served[1], workflow="api")
    assert len(logged) == before + 1
    assert logged[0]["system_prompt"] == "Be brief." and logged[0]["messages"][-1]["content"] == "Name a colour."
    assert logged[0]["response"] == result.choices[0].message.content


def test_streamed_chat_is_server_sent_events_and_logged(client: openai.OpenAI,
                                                        served: tuple[StillroomServer, Path]) -> None:
    stream = client.chat.completions.create(
        model=MODEL, max_tokens=12, seed=9, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Tell me about rivers."}],
        extra_headers={"X-Stillroom-Workflow": "stream-test"})
    pieces, usage, reasons = [], None, []
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                reasons.append(choice.finish_reason)
    text = "".join(pieces)
    assert text and reasons and usage is not None and usage.completion_tokens >= 1
    logged = rows(served[1], workflow="stream-test")
    assert len(logged) == 1 and logged[0]["response"] == text and logged[0]["meta"]["server"]["stream"]


def test_logprobs_completion_and_chat(client: openai.OpenAI) -> None:
    completion = client.completions.create(model=MODEL, prompt="One, two,", max_tokens=4, logprobs=2, seed=1)
    lp = completion.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == 4 and all(x <= 0 for x in lp.token_logprobs)
    chat = client.chat.completions.create(model=MODEL, max_tokens=4, logprobs=True, top_logprobs=2, seed=1,
                                          messages=[{"role": "user", "content": "Hi"}])
    content = chat.choices[0].logprobs.content
    assert content and all(item.logprob <= 0 and len(item.top_logprobs) >= 2 for item in content)


def test_n_choices_stop_and_seed(client: openai.OpenAI, served: tuple[StillroomServer, Path]) -> None:
    result = client.completions.create(model=MODEL, prompt="List: apple,", max_tokens=10, n=2, seed=11, stop=["\n"],
                                       extra_headers={"X-Stillroom-Workflow": "n-test"})
    assert [c.index for c in result.choices] == [0, 1]
    assert all("\n" not in c.text for c in result.choices)
    logged = rows(served[1], workflow="n-test")
    assert len(logged) == 2 and {r["seed"] for r in logged} == {11, 12}
    again = client.completions.create(model=MODEL, prompt="List: apple,", max_tokens=10, seed=11, stop=["\n"])
    assert again.choices[0].text == result.choices[0].text


def test_response_format_json_object(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(model=MODEL, max_tokens=16, seed=2, temperature=0.2,
                                            response_format={"type": "json_object"},
                                            messages=[{"role": "user", "content": "Give a JSON object with a name."}])
    text = result.choices[0].message.content
    if result.choices[0].finish_reason == "stop":
        json.loads(text)  # the grammar forces valid JSON
    assert text.lstrip().startswith("{")


@pytest.mark.parametrize("kwargs,status,fragment", [
    ({"model": "no-such-model"}, 404, "does not exist"),
    ({"temperature": 5}, 400, "temperature"),
    ({"max_tokens": 0}, 400, "max_tokens"),
    ({"n": 100}, 400, "'n'"),
    ({"prompt": "word " * 3000}, 400, "context"),
])
def test_bad_requests_get_openai_errors(client: openai.OpenAI, kwargs: dict, status: int, fragment: str) -> None:
    args = {"model": MODEL, "prompt": "Hello", "max_tokens": 4} | kwargs
    with pytest.raises(openai.APIStatusError) as info:
        client.completions.create(**args)
    assert info.value.status_code == status and fragment in info.value.message
    assert client.completions.create(model=MODEL, prompt="Still serving?", max_tokens=2).choices  # keeps serving


def test_thirty_two_concurrent_clients(client: openai.OpenAI, served: tuple[StillroomServer, Path]) -> None:
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def ask(i: int) -> None:
        try:
            own = openai.OpenAI(base_url=served[0].url, api_key="x", max_retries=0, timeout=300)
            reply = own.completions.create(model=MODEL, prompt=f"Number {i} is", max_tokens=4, seed=i,
                                           extra_headers={"X-Stillroom-Workflow": "concurrency"})
            results[i] = reply.choices[0].text
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 32
    logged = rows(served[1], workflow="concurrency")
    assert len(logged) == 32
    by_seed = {row["seed"]: row["response"] for row in logged}
    assert all(by_seed[i] == results[i] for i in range(32))
    ledger = Ledger.open(served[1])
    assert ledger.verify().ok
    ledger.close()


def test_client_that_disconnects_mid_stream_is_logged_as_cancelled(served: tuple[StillroomServer, Path]) -> None:
    server = served[0]
    body = json.dumps({"model": MODEL, "prompt": "A very long story:", "max_tokens": 400, "stream": True}).encode()
    sock = socket.create_connection((server.host, server.port), timeout=60)
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"X-Stillroom-Workflow: hangup\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    received = b""
    while b"data: " not in received:
        received += sock.recv(4096)
    assert received.startswith(b"HTTP/1.1 200")
    sock.close()  # hang up after the first event
    client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
    client.completions.create(model=MODEL, prompt="after", max_tokens=1)  # runs after the cancelled one
    logged = rows(served[1], workflow="hangup")
    assert len(logged) == 1 and logged[0]["status"] == "cancelled" and logged[0]["completion_tokens"] < 400


def test_api_keys_set_the_workflow_and_can_be_required(served: tuple[StillroomServer, Path]) -> None:
    server, ledger_file = served
    db = open_db(ledger_file)
    key, secret = create_key(db, "my-pipeline", "self-instruct-run")
    db.close()
    keyed = openai.OpenAI(base_url=server.url, api_key=secret, max_retries=0)
    keyed.completions.create(model=MODEL, prompt="With a key", max_tokens=2,
                             extra_headers={"X-Stillroom-Workflow": "ignored-when-keyed"})
    logged = rows(ledger_file, workflow="self-instruct-run")
    assert len(logged) == 1 and logged[0]["meta"]["server"]["api_key"] == "my-pipeline"
    server.require_key = True
    try:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=server.url, api_key="wrong", max_retries=0).models.list()
        assert keyed.models.list().data
    finally:
        server.require_key = False


def test_other_hosts_need_a_key(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    Ledger.open(tmp_path / "ledger.db").close()
    server = StillroomServer(tmp_path / "ledger.db", None, host="0.0.0.0", port=0)
    assert server.require_key
    with pytest.raises(Exception, match="needs an API key"):
        server.start()
    server.stop()
