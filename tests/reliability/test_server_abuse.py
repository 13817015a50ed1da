"""Malformed, oversized and slow HTTP requests against the real local server (StillroomServer).

Each case sends raw bytes over a socket (or uses http.client) and expects a 4xx status with an
OpenAI-style {"error": {"message", "type", "param", "code"}} body; after each one the real `openai`
client still gets an answer. Faults injected and what was observed:

- a body that is not JSON, JSON that is not an object, invalid UTF-8: 400 invalid_json;
- JSON nested 100,000 deep and an integer of 5,000 digits (Python raises RecursionError / ValueError,
  not JSONDecodeError, for these): 400 invalid_json (were 500 internal errors before);
- wrong types and missing fields (model, messages, prompt, n, stream, max_tokens, stop, ...): 400
  naming the parameter;
- a lone UTF-16 surrogate in a prompt or message (valid JSON, not encodable text): 400 naming the
  parameter, refused before it reaches the model (it was a 400 carrying the tokenizer's codec error,
  after a failed attempt to log an error row that could not be hashed), nothing logged;
- an unknown model: 404 model_not_found; n above the limit and options the server cannot honour
  (tools outside chat, the legacy functions, logit_bias, best_of > 1, suffix, echo): 400
  unsupported_parameter (hostile tool definitions: test_server_tools_hostile.py);
- Content-Length of 100 MB with no body: 413 at once, nothing read; a 20 MB body: read away, 413;
- Content-Length that is not a number, negative, or several different ones: 400;
  a chunked body (no Content-Length): 411;
- a client that sends its headers (or half its body) and then stops: only its own thread waits
  (other clients are served meanwhile); after the read timeout it gets 408;
- the ledger locked by another process while a request runs: 503 ledger_unavailable naming the
  lock (was a 400 invalid_request, as if the client were at fault), nothing half-written, and the
  next request is answered and logged once the lock is gone;
- unknown paths: 404; unknown methods (PUT, DELETE, PATCH, OPTIONS, HEAD...): 405 with JSON (was
  http.server's 501 HTML page); a 70 KB header line, 150 headers, a 70 KB request line: 431/414
  with JSON (were HTML pages); garbage instead of a request line: 400 JSON;
- more connections at once than the server serves (http_server.MAX_CONNECTIONS, lowered to 2 for the test, both
  held by stalled clients): 503 too_many_connections at once, no thread started; the slots come
  back when those clients go.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from app.core.serve import server as server_module
from app.core.serve.server import MAX_BODY_BYTES, StillroomServer
from app.core.store import Ledger
from tests.conftest import make_home, running_server
from tests.reliability.faults import lock_held_by_another_process

MODEL = "gemma-3-270m-q4_k_m"
SOCKET_TIMEOUT_S = 60
STALL_TIMEOUT_S = 5


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, model_store: Path) -> Iterator[tuple[StillroomServer, Path]]:
    with running_server(make_home(tmp_path_factory.mktemp("abuse") / "home", model_store), n_ctx=512) as served:
        yield served


@pytest.fixture(scope="module")
def client(served: tuple[StillroomServer, Path]) -> openai.OpenAI:
    return openai.OpenAI(base_url=served[0].url, api_key="x", max_retries=0, timeout=120)


def still_answers(client: openai.OpenAI) -> None:
    """A normal request through the real openai client gets a normal answer."""
    reply = client.completions.create(model=MODEL, prompt="Still there?", max_tokens=1, seed=1)
    assert reply.choices and reply.usage.completion_tokens == 1


def exchange(server: StillroomServer, data: bytes, *, shutdown: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer (the server closes after an error); returns
    (status, headers, body)."""
    with socket.create_connection((server.host, server.port), timeout=SOCKET_TIMEOUT_S) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything we send
        if shutdown:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
                if _complete(received):
                    break
        except ConnectionResetError:
            pass
    return parse(received)


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def parse(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1."), f"no HTTP answer: {data[:200]!r}"
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def post(path: str, body: bytes, headers: dict[str, str] | None = None, length: int | str | None = None) -> bytes:
    """A raw POST request; `length` overrides the Content-Length header (None: the body's length)."""
    fields = {"Host": "127.0.0.1", "Content-Type": "application/json", **(headers or {})}
    if "Transfer-Encoding" not in fields:
        fields["Content-Length"] = str(len(body) if length is None else length)
    lines = [f"POST {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in fields.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def assert_openai_error(status: int, headers: dict[str, str], body: bytes, expected: int,
                        code: str | None = None, param: str | None = None) -> dict:
    assert status == expected, (status, body[:300])
    assert headers.get("content-type") == "application/json", headers
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if code is not None:
        assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    return error


def chat_body(**fields: object) -> bytes:
    return json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
                      | fields).encode()


@pytest.mark.parametrize("body,code", [
    (b"{not json", "invalid_json"),
    (b"", "invalid_json"),
    (b"[]", "invalid_json"),
    (b'"a string"', "invalid_json"),
    (b"null", "invalid_json"),
    (b'{"model": "x", "messages": [{"role": "user", "content": "\xff\xfe\xfd"}]}', "invalid_json"),
    (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
    (b'{"model": "m", "seed": ' + b"9" * 5000 + b"}", "invalid_json"),
])
def test_bodies_that_are_not_a_json_object(served: tuple[StillroomServer, Path], client: openai.OpenAI,
                                           body: bytes, code: str) -> None:
    assert_openai_error(*exchange(served[0], post("/v1/chat/completions", body)), 400, code)
    still_answers(client)


@pytest.mark.parametrize("path,fields,param", [
    ("/v1/chat/completions", {"model": None}, "model"),
    ("/v1/chat/completions", {"model": 7}, "model"),
    ("/v1/chat/completions", {"messages": None}, "messages"),
    ("/v1/chat/completions", {"messages": "hi"}, "messages"),
    ("/v1/chat/completions", {"messages": []}, "messages"),
    ("/v1/chat/completions", {"messages": [1, 2]}, "messages[0]"),
    ("/v1/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": {"a": 1}}]}, "messages[0].content"),
    ("/v1/chat/completions", {"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
    ("/v1/chat/completions", {"max_tokens": "10"}, "max_tokens"),
    ("/v1/chat/completions", {"max_tokens": -1}, "max_tokens"),
    ("/v1/chat/completions", {"max_tokens": 1.5}, "max_tokens"),
    ("/v1/chat/completions", {"temperature": "hot"}, "temperature"),
    ("/v1/chat/completions", {"temperature": float("nan")}, "temperature"),
    ("/v1/chat/completions", {"top_p": float("inf")}, "top_p"),
    ("/v1/chat/completions", {"seed": -1}, "seed"),
    ("/v1/chat/completions", {"seed": True}, "seed"),
    ("/v1/chat/completions", {"stop": 3}, "stop"),
    ("/v1/chat/completions", {"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ("/v1/chat/completions", {"stream": "yes"}, "stream"),
    ("/v1/chat/completions", {"logprobs": 5}, "logprobs"),
    ("/v1/chat/completions", {"top_logprobs": 3}, "top_logprobs"),
    ("/v1/chat/completions", {"response_format": {"type": "xml"}}, "response_format"),
    ("/v1/chat/completions", {"n": 0}, "n"),
    ("/v1/chat/completions", {"n": 17}, "n"),
    ("/v1/chat/completions", {"n": "2"}, "n"),
    ("/v1/completions", {"prompt": None}, "prompt"),
    ("/v1/completions", {"prompt": {"text": "x"}}, "prompt"),
    ("/v1/completions", {"prompt": [1, 2, 3]}, "prompt"),
    ("/v1/completions", {"prompt": ["a", "b"]}, "prompt"),
])
def test_wrong_types_and_missing_fields_name_the_parameter(served: tuple[StillroomServer, Path],
                                                           client: openai.OpenAI, path: str,
                                                           fields: dict, param: str) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "prompt": "Hi", "max_tokens": 1}
    body |= fields
    body = {k: v for k, v in body.items() if v is not None}
    status, headers, raw = exchange(served[0], post(path, json.dumps(body).encode()))
    error = assert_openai_error(status, headers, raw, 400, param=param)
    assert param.split("[")[0].split(".")[0] in error["message"]
    still_answers(client)


@pytest.mark.parametrize("fields,param", [
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
    ({"functions": [{"name": "f", "parameters": {}}]}, "functions"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"),
    ({"best_of": 3}, "best_of"),
    ({"suffix": "the end"}, "suffix"),
    ({"echo": True}, "echo"),
])
def test_options_the_server_cannot_honour_are_refused(served: tuple[StillroomServer, Path],
                                                      client: openai.OpenAI, fields: dict, param: str) -> None:
    path = "/v1/completions" if param in ("best_of", "suffix", "echo", "tools", "tool_choice") else "/v1/chat/completions"
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "prompt": "Hi", "max_tokens": 1}
    status, headers, raw = exchange(served[0], post(path, json.dumps(body | fields).encode()))
    assert_openai_error(status, headers, raw, 400, "unsupported_parameter", param)
    still_answers(client)


def test_neutral_values_of_unsupported_options_are_accepted(client: openai.OpenAI) -> None:
    """What SDKs send by default (an empty tool list, tool_choice none, best_of 1) is not an error."""
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=1,
                                           tools=[], tool_choice="none", logit_bias={}, seed=2)
    assert reply.choices
    assert client.completions.create(model=MODEL, prompt="Hi", max_tokens=1, best_of=1, seed=2).choices


def test_unknown_model_with_the_openai_client(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}], max_tokens=1)
    assert info.value.body["code"] == "model_not_found" and "gpt-4o" in info.value.message
    still_answers(client)


def test_text_that_is_not_unicode_is_refused_and_nothing_is_logged(served: tuple[StillroomServer, Path],
                                                                   client: openai.OpenAI) -> None:
    server, ledger_file = served
    before = _row_count(ledger_file)
    for path, param in (("/v1/chat/completions", "messages[0].content"), ("/v1/completions", "prompt")):
        body = chat_body(prompt="Hi \ud800 there") if param == "prompt" else json.dumps(
            {"model": MODEL, "max_tokens": 1, "messages": [{"role": "user", "content": "Hi \udfff"}]}).encode()
        for stream in (False, True):
            request = json.loads(body) | {"stream": stream}
            status, headers, raw = exchange(server, post(path, json.dumps(request).encode()))
            assert_openai_error(status, headers, raw, 400, "invalid_value", param)
    assert _row_count(ledger_file) == before
    still_answers(client)
    _assert_ledger_intact(ledger_file)


def test_content_length_of_100_mb_with_no_body_is_refused_at_once(served: tuple[StillroomServer, Path],
                                                                  client: openai.OpenAI) -> None:
    started = time.monotonic()
    status, headers, raw = exchange(served[0], post("/v1/chat/completions", b"", length=100 * 1024 * 1024))
    assert_openai_error(status, headers, raw, 413, "request_too_large")
    assert time.monotonic() - started < 10 and str(MAX_BODY_BYTES) in json.loads(raw)["error"]["message"]
    still_answers(client)


def test_a_20_mb_body_is_read_away_and_refused(served: tuple[StillroomServer, Path], client: openai.OpenAI) -> None:
    body = b'{"model": "m", "prompt": "' + b"a" * (20 * 1024 * 1024) + b'"}'
    assert_openai_error(*exchange(served[0], post("/v1/completions", body)), 413, "request_too_large")
    still_answers(client)


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", "10, 12"])
def test_bogus_content_length(served: tuple[StillroomServer, Path], client: openai.OpenAI, length: str) -> None:
    status, headers, raw = exchange(served[0], post("/v1/completions", chat_body(), length=length))
    assert_openai_error(status, headers, raw, 400, "invalid_request")
    still_answers(client)


def test_chunked_body_needs_a_length(served: tuple[StillroomServer, Path], client: openai.OpenAI) -> None:
    body = chat_body()
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    request = post("/v1/chat/completions", chunked, {"Transfer-Encoding": "chunked"})
    assert_openai_error(*exchange(served[0], request), 411, "length_required")
    still_answers(client)


def test_a_client_that_stops_mid_request_does_not_hold_up_others(served: tuple[StillroomServer, Path],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    server = served[0]
    monkeypatch.setattr(server_module._Handler, "timeout", STALL_TIMEOUT_S)  # read timeout of new connections
    body = chat_body()
    stalled = []
    for data in (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n",  # headers not finished
                 post("/v1/chat/completions", b"", length=len(body)),  # headers, no body
                 post("/v1/chat/completions", body[:10], length=len(body))):  # half a body
        sock = socket.create_connection((server.host, server.port), timeout=SOCKET_TIMEOUT_S)
        sock.sendall(data)
        stalled.append(sock)
    # A client of its own: the lowered timeout applies to every receive that starts after the patch, so an
    # idle keep-alive connection used here is dropped by the server after STALL_TIMEOUT_S, just when the
    # stalled clients' 408s arrive; the module client reusing it raced with that close ('server
    # disconnected', in this test's last line or the next test's first, depending on timing).
    fresh = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0, timeout=120)
    try:
        still_answers(fresh)  # served while the three stalled clients wait...
        ready, _, _ = select.select(stalled, [], [], 0)
        assert not ready, "the stalled clients timed out before another client was served"  # ...not after
        answers = []
        for sock in stalled:
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
            answers.append(received)
    finally:
        for sock in stalled:
            sock.close()
        fresh.close()
    assert answers[0] == b""  # no request line and headers: the connection is just closed
    for received in answers[1:]:
        assert_openai_error(*parse(received), 408, "request_timeout")
    with openai.OpenAI(base_url=server.url, api_key="x", max_retries=0, timeout=120) as last:  # a new connection
        still_answers(last)


@pytest.mark.parametrize("path", ["/v1/nowhere", "/v2/chat/completions", "/", "/v1/completions/../../etc/passwd",
                                  "/v1/%ff%fe", "/v1/\xe9"])
def test_unknown_paths(served: tuple[StillroomServer, Path], client: openai.OpenAI, path: str) -> None:
    request = post(path, chat_body()).replace(path.encode("latin-1"), path.encode("utf-8", "surrogateescape"), 1)
    assert_openai_error(*exchange(served[0], request), 404, "not_found")
    status, headers, raw = exchange(served[0], f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode("utf-8"))
    assert_openai_error(status, headers, raw, 404, "not_found")
    still_answers(client)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW"])
def test_unknown_methods(served: tuple[StillroomServer, Path], client: openai.OpenAI, method: str) -> None:
    request = f"{method} /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}".encode()
    status, headers, raw = exchange(served[0], request)
    error = assert_openai_error(status, headers, raw, 405, "method_not_allowed")
    assert method in error["message"] and "GET" in headers.get("allow", "")
    still_answers(client)


def test_head_is_answered_without_a_body(served: tuple[StillroomServer, Path]) -> None:
    with socket.create_connection((served[0].host, served[0].port), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.sendall(b"HEAD /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    status, headers, body = parse(received)
    assert status == 405 and body == b"" and headers["content-type"] == "application/json"


@pytest.mark.parametrize("request_bytes,expected", [
    (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n", 431),
    (b"POST /v1/completions HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n", 431),
    (b"GET /v1/models?" + b"q" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"\x00\xff garbage \xfe\r\n\r\n", 400),
    (b"GET /v1/models HTTP/9.9\r\n\r\n", 505),
])
def test_broken_request_lines_and_headers(served: tuple[StillroomServer, Path], client: openai.OpenAI,
                                          request_bytes: bytes, expected: int) -> None:
    assert_openai_error(*exchange(served[0], request_bytes), expected)
    still_answers(client)


def test_headers_with_invalid_utf8_are_harmless(served: tuple[StillroomServer, Path], client: openai.OpenAI) -> None:
    request = post("/v1/chat/completions", chat_body(), {"X-Stillroom-Workflow": "caf\xe9", "User-Agent": "\xff\xfe"})
    status, _, raw = exchange(served[0], request)
    assert status == 200 and json.loads(raw)["choices"]
    still_answers(client)


def test_a_locked_ledger_is_a_503_and_the_server_recovers(served: tuple[StillroomServer, Path],
                                                          client: openai.OpenAI) -> None:
    ledger_file = served[1]
    before = _row_count(ledger_file)
    with lock_held_by_another_process(ledger_file):  # the server waits out its 10 s busy timeout
        with pytest.raises(openai.APIStatusError) as info:
            client.completions.create(model=MODEL, prompt="Locked?", max_tokens=1, seed=1)
    assert info.value.status_code == 503 and info.value.body["code"] == "ledger_unavailable"
    assert "locked by another program" in info.value.message
    assert _row_count(ledger_file) == before
    still_answers(client)
    assert _row_count(ledger_file) == before + 1
    _assert_ledger_intact(ledger_file)


def test_the_ledger_is_intact_after_the_abuse(served: tuple[StillroomServer, Path]) -> None:
    _assert_ledger_intact(served[1])


def _row_count(ledger_file: Path) -> int:
    ledger = Ledger.open(ledger_file)
    try:
        return ledger.head()[2]
    finally:
        ledger.close()


def _assert_ledger_intact(ledger_file: Path) -> None:
    ledger = Ledger.open(ledger_file)
    try:
        assert ledger.verify().ok
        assert ledger.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        ledger.close()


def test_connections_beyond_the_cap_get_503_at_once(served: tuple[StillroomServer, Path], client: openai.OpenAI,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    server = served[0]
    slots = server.listener.slots
    held = slots.in_use  # the openai client's kept-alive connection holds one
    monkeypatch.setattr(slots, "limit", held + 2)
    stalled = [socket.create_connection((server.host, server.port), timeout=SOCKET_TIMEOUT_S) for _ in range(2)]
    try:
        for sock in stalled:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        time.sleep(0.5)  # both accepted and waiting on their threads
        assert_openai_error(*exchange(server, post("/v1/models", b"")), 503, "too_many_connections")
    finally:
        for sock in stalled:
            sock.close()
    deadline = time.monotonic() + 30
    while slots.in_use > held and time.monotonic() < deadline:  # the closed connections give theirs back
        time.sleep(0.05)
    assert slots.in_use <= held
    still_answers(client)
