"""The proxy against an in-memory responder with fixed bytes: what the client receives is exactly
what the engine sent (whole answers and chunked streams), credentials are passed on only as they
should be, several engines share the load, and a burst of concurrent clients leaves a ledger whose
hash chain and Merkle tree both verify."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from app.core.provenance.card import render_card
from app.core.provenance.croissant import croissant_document
from app.core.provenance.match import run_match
from app.core.provenance.statement import Declared, build_statement
from app.core.proxy.server import ProxyServer
from app.core.serve.api_keys import create_key
from app.core.serve.server import WORKFLOW_HEADER
from app.core.store import Ledger, open_db
from app.core.store.checkpoint import signed_roots
from app.core.store.tree import verify_tree
from tests.e2e.ledger_rows import rows
from tests.e2e.memory_responder import CHAT_BODY, STREAM_CHUNKS, memory_responder

CHAT = {"model": "memory-model", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def ledger_file(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    Ledger.open(path).close()
    return path


@pytest.fixture
def responder() -> Iterator[tuple[str, list[dict[str, str]]]]:
    with memory_responder() as found:
        yield found


def running(ledger_file: Path, upstreams: list[str], **options) -> ProxyServer:
    server = ProxyServer(ledger_file, upstreams, port=0, **options)
    server.start()
    return server


def post(url: str, body: dict, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    host, port = url.split("//")[1].split("/")[0].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", "/v1/chat/completions", json.dumps(body),
                     {"Content-Type": "application/json"} | (headers or {}))
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


def test_whole_answers_and_streams_arrive_byte_for_byte(ledger_file: Path, responder) -> None:
    server = running(ledger_file, [responder[0]])
    try:
        status, _, data = post(server.url, CHAT, {WORKFLOW_HEADER: "bytes"})
        assert (status, data) == (200, CHAT_BODY)
        status, headers, data = post(server.url, CHAT | {"stream": True}, {WORKFLOW_HEADER: "bytes"})
        assert status == 200 and headers["Content-Type"] == "text/event-stream"
        assert data == b"".join(STREAM_CHUNKS)
    finally:
        server.stop()
    assert len(responder[1]) == 2  # each request reached the engine once (kept-alive connection reused)
    whole, streamed = sorted(rows(ledger_file, "bytes"), key=lambda row: row["id"])
    assert whole["response"] == json.loads(CHAT_BODY)["choices"][0]["message"]["content"]
    assert (streamed["response"], streamed["finish_reason"]) == ("Hello", "stop")
    assert streamed["meta"]["proxy"]["bytes"] == len(b"".join(STREAM_CHUNKS))
    assert whole["meta"]["proxy"]["identity"] == {"name": "memory-model", "method": "reported-name",
                                                  "value": "memory-model", "verified": False, "details": None}


def test_a_stillroom_key_is_never_sent_on_and_the_upstream_key_replaces_any(ledger_file: Path, responder) -> None:
    db = open_db(ledger_file)
    _, secret = create_key(db, "team", "keyed")
    db.close()
    server = running(ledger_file, [responder[0]])
    try:
        post(server.url, CHAT, {"Authorization": f"Bearer {secret}"})
        post(server.url, CHAT, {"Authorization": "Bearer engine-token"})
    finally:
        server.stop()
    assert "Authorization" not in responder[1][0]
    assert responder[1][1]["Authorization"] == "Bearer engine-token"
    [row] = rows(ledger_file, "keyed")  # the key's workflow, as on the server
    assert row["meta"]["proxy"]["api_key"] == "team"
    server = running(ledger_file, [responder[0]], upstream_key="from-env")
    try:
        post(server.url, CHAT, {"Authorization": "Bearer engine-token"})
    finally:
        server.stop()
    assert responder[1][2]["Authorization"] == "Bearer from-env"


def test_requests_are_spread_over_several_engines(ledger_file: Path) -> None:
    with memory_responder() as first, memory_responder() as second:
        server = running(ledger_file, [first[0], second[0]])
        try:
            for _ in range(6):
                assert post(server.url, CHAT, {WORKFLOW_HEADER: "spread"})[0] == 200
        finally:
            server.stop()
        assert len(first[1]) == len(second[1]) == 3
    logged = [row["meta"]["proxy"]["upstream"] for row in rows(ledger_file, "spread")]
    assert len(logged) == 6
    assert sorted(set(logged)) == sorted([first[0], second[0]])


def test_a_concurrent_burst_is_logged_whole_with_the_chain_and_tree_intact(ledger_file: Path, responder) -> None:
    clients, each = 12, 25
    server = running(ledger_file, [responder[0]])
    failures: list[BaseException] = []

    def send(index: int) -> None:
        try:
            with openai.OpenAI(base_url=server.url, api_key="x", max_retries=0, timeout=30) as client:
                for n in range(each):
                    answer = client.chat.completions.create(model="memory-model", stream=n % 5 == 0,
                                                            messages=[{"role": "user", "content": f"{index}-{n}"}],
                                                            extra_headers={WORKFLOW_HEADER: "burst"})
                    if n % 5 == 0:
                        assert "".join(c.choices[0].delta.content or "" for c in answer) == "Hello"
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer = server.writer
    server.stop()
    assert not failures
    logged = rows(ledger_file, "burst")
    assert len(logged) == clients * each
    assert sorted(row["prompt"] for row in logged) == sorted(f"{i}-{n}" for i in range(clients) for n in range(each))
    assert writer is not None and writer.rows == clients * each and writer.batches < writer.rows
    ledger = Ledger.open(ledger_file)
    try:
        assert ledger.verify().ok
        check = verify_tree(ledger.db.conn, signed_roots(ledger.db.conn))
        assert check is not None and check.ok and check.leaves == clients * each
    finally:
        ledger.close()


def test_a_statement_says_a_proxied_model_was_known_only_by_its_reported_name(ledger_file: Path, responder,
                                                                               tmp_path: Path) -> None:
    server = running(ledger_file, [responder[0]])
    try:
        for n in range(3):
            post(server.url, {"model": "memory-model", "messages": [{"role": "user", "content": f"question {n}"}]},
                 {WORKFLOW_HEADER: "traced"})
    finally:
        server.stop()
    dataset = tmp_path / "data.jsonl"
    dataset.write_text("".join(json.dumps({"prompt": r["prompt"], "response": r["response"]}) + "\n"
                               for r in rows(ledger_file, "traced")))
    statement = build_statement(run_match(dataset, ledger_file), ledger_file, Declared(), screen=False)
    [model] = statement["models"]
    assert (model["name"], model["sha256"], model["generations"]) == ("memory-model", "unknown", 3)
    assert model["identified_by"] == "reported-name"
    assert model["identity"] == {"method": "reported-name", "value": "memory-model", "verified": False,
                                 "upstream": responder[0]}
    card = render_card(statement, dataset.name)
    assert (f"**memory-model** (identified by the name the engine reports (unverified): `memory-model`, served by "
            f"{responder[0]})") in card
    assert "as that engine identified them" in card
    croissant = croissant_document(statement, dataset, dataset.name)
    assert croissant["rai:machineAnnotationTools"] == ["memory-model (the name the engine reports (unverified): memory-model)"]


def test_a_request_goes_to_the_engine_that_lists_its_model(ledger_file: Path) -> None:
    other = json.dumps({"object": "list", "data": [{"id": "other-model", "object": "model"}]}).encode()
    with memory_responder() as first, memory_responder({("GET", "/v1/models"): other}) as second:
        server = running(ledger_file, [first[0], second[0]])
        try:
            for model in ("other-model", "memory-model", "other-model", "memory-model"):
                assert post(server.url, CHAT | {"model": model}, {WORKFLOW_HEADER: "routed"})[0] == 200
        finally:
            server.stop()
        assert len(first[1]) == len(second[1]) == 2
    logged = sorted(rows(ledger_file, "routed"), key=lambda row: row["id"])
    assert [row["meta"]["proxy"]["upstream"] for row in logged] == [second[0], first[0], second[0], first[0]]


def test_one_bad_row_in_a_batch_fails_alone(ledger_file: Path) -> None:
    from app.core.proxy.group_writer import GroupWriter

    writer = GroupWriter(ledger_file)
    good = {"source": "proxy", "workflow": "batch", "prompt": "p", "response": "r"}
    futures = [writer.submit(good), writer.submit(good | {"source": "nowhere"}), writer.submit(good)]
    writer.close()
    assert futures[0].result() + 1 == futures[2].result()
    with pytest.raises(ValueError, match="source must be one of"):
        futures[1].result()
    assert len(rows(ledger_file, "batch")) == 2


def test_what_the_server_refuses_the_proxy_refuses_before_the_engine(ledger_file: Path, responder) -> None:
    server = running(ledger_file, [responder[0]])
    try:
        wrong_host = post(server.url, CHAT, {"Host": "evil.example"})
        from_a_page = post(server.url, CHAT, {"Origin": "https://evil.example"})
        host, port = server.url.split("//")[1].split("/")[0].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("POST", "/v1/chat/completions", b"prompt=hi", {"Content-Type": "application/x-www-form-urlencoded"})
        form = conn.getresponse()
        form_status = form.status
        form.read()
        conn.close()
        unknown_key = post(server.url, CHAT, {"Authorization": "Bearer sk-stillroom-not-a-real-key"})
    finally:
        server.stop()
    assert wrong_host[0] == 421 and from_a_page[0] == 403 and form_status == 415 and unknown_key[0] == 401
    assert responder[1] == []  # nothing reached the engine
    assert rows(ledger_file, "api") == []


def test_an_answer_larger_than_the_capture_reaches_the_client_whole(ledger_file: Path) -> None:
    from app.core.proxy.forward import MAX_CAPTURE_BYTES

    vectors = [{"object": "embedding", "index": i, "embedding": [0.123456789] * 1024} for i in range(400)]
    big = json.dumps({"object": "list", "data": vectors, "model": "memory-model"}).encode()
    assert len(big) > MAX_CAPTURE_BYTES
    with memory_responder({("POST", "/v1/embeddings"): big}) as (engine, _):
        server = running(ledger_file, [engine])
        try:
            host, port = server.url.split("//")[1].split("/")[0].split(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            conn.request("POST", "/v1/embeddings", json.dumps({"model": "memory-model", "input": ["a"] * 400}),
                         {"Content-Type": "application/json", WORKFLOW_HEADER: "big"})
            answer = conn.getresponse()
            received = answer.read()
            conn.close()
        finally:
            server.stop()
    assert received == big
    [row] = rows(ledger_file, "big")
    assert row["meta"]["proxy"]["captured_whole"] is False and row["meta"]["proxy"]["bytes"] == len(big)
    assert row["status"] == "ok" and row["mode"] == "embedding" and row["response"] is None
