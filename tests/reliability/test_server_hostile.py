"""Hostile clients of the real local server: web pages, forged keys, slow and smuggling clients.

Each case reproduces a way a client could get rows into the append-only ledger, or hold the server,
that the server allowed before; each is now refused with an OpenAI-style error, logs nothing, and
leaves the server answering the real `openai` client:

- an unknown or revoked sk-stillroom- key (revoked through the real `stillroom keys revoke`): was
  answered 200 and filed under the workflow `api`; now 401 on every endpoint. No key on 127.0.0.1
  still works;
- a Host that is not the server's address (a page that rebinds its DNS name to 127.0.0.1): was
  served; now 421. A foreign Origin: 403. A body sent as text/plain, a form, or with no type (what a
  page can send without a CORS preflight): 415;
- a prompt of 1 MB, longer than the context: was logged in full; now an excerpt, with the sha256 and
  size of the whole in meta.log_excerpt and a note in the row's error;
- workflow names with escape sequences, NUL, 201 characters or the reserved `lab:` prefix: were
  logged as sent; now 400;
- a GET whose body is a second request: the body was run as a request (a row logged); now 400 and
  nothing runs. `Content-Length: 4_9` (int() reads 49) and a "Content-Length : 5" line (which the
  standard library takes for the start of the body): now 400;
- 64 stalled connections from one address: took every slot, so every client got 503; now that
  address holds at most MAX_CONNECTIONS_PER_ADDRESS and others are served. A client trickling its
  headers or body a byte at a time held its slot indefinitely (each byte restarted a 120 s timer);
  now the headers and the body have deadlines.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from app.core.log_excerpt import EXCERPT_CHARS
from app.core.serve import guarded_handler, http_server
from app.core.serve.server import StillroomServer
from app.core.store import Ledger, open_db
from app.core.store.queries import LogFilter, list_generations
from app.core.textnorm import content_hash
from tests.conftest import make_home, running_server
from tests.reliability.test_server_abuse import assert_openai_error, client, exchange, parse, post, still_answers  # noqa: F401 (client is a fixture)

MODEL = "gemma-3-270m-q4_k_m"
REPO = Path(__file__).resolve().parents[2]
SOCKET_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, model_store: Path) -> Iterator[tuple[StillroomServer, Path]]:
    with running_server(make_home(tmp_path_factory.mktemp("hostile") / "home", model_store), n_ctx=512) as served:
        yield served


def row_count(ledger_file: Path) -> int:
    ledger = Ledger.open(ledger_file)
    try:
        return ledger.head()[2]
    finally:
        ledger.close()


def rows(ledger_file: Path, **filters: str) -> list[dict]:
    db = open_db(ledger_file, readonly=True)
    try:
        return list_generations(db, LogFilter(**filters), limit=None)
    finally:
        db.close()


def stillroom(home: Path, *args: str) -> str:
    """The real CLI in its own process (this checkout's code, on the server's data folder)."""
    done = subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=180,
                          cwd=REPO, env=os.environ | {"STILLROOM_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    return done.stdout


def completion_body(**fields: object) -> bytes:
    return json.dumps({"model": MODEL, "prompt": "Hi", "max_tokens": 1} | fields).encode()


# -- API keys (issue 14, item 4) ---------------------------------------------------------------------


def test_unknown_and_revoked_keys_get_401_everywhere(served: tuple[StillroomServer, Path],
                                                     client: openai.OpenAI) -> None:
    server, ledger_file = served
    home = ledger_file.parent
    secret = stillroom(home, "keys", "create", "--workflow", "to-be-revoked").strip()
    keyed = openai.OpenAI(base_url=server.url, api_key=secret, max_retries=0, timeout=120)
    keyed.completions.create(model=MODEL, prompt="Keyed", max_tokens=1)
    assert len(rows(ledger_file, workflow="to-be-revoked")) == 1
    key_id = next(line.split()[0].lstrip("#") for line in stillroom(home, "keys", "list").splitlines()
                  if "to-be-revoked" in line)
    stillroom(home, "keys", "revoke", key_id)
    typo = openai.OpenAI(base_url=server.url, api_key=secret[:-1] + ("A" if secret[-1] != "A" else "B"),
                         max_retries=0, timeout=120)
    before = row_count(ledger_file)
    for refused in (keyed, typo):
        for call in (lambda c: c.models.list(),
                     lambda c: c.completions.create(model=MODEL, prompt="Revoked?", max_tokens=1),
                     lambda c: c.chat.completions.create(model=MODEL, max_tokens=1,
                                                         messages=[{"role": "user", "content": "Revoked?"}])):
            with pytest.raises(openai.AuthenticationError) as info:
                call(refused)
            assert info.value.body["code"] == "invalid_api_key" and "revoked" in info.value.message
        request = (f"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   f"Authorization: Bearer {refused.api_key}\r\n\r\n").encode()
        assert_openai_error(*exchange(server, request), 401, "invalid_api_key")
    assert row_count(ledger_file) == before
    assert not [r for r in rows(ledger_file, workflow="api") if r["prompt"] == "Revoked?"]
    still_answers(client)  # no key (a token that is not a Stillroom key) on 127.0.0.1: served as before
    assert rows(ledger_file, workflow="api")[0]["prompt"] == "Still there?"


# -- browsers: Host, Origin, content type --------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.nip.io:{port}",
                                  "localhost:1", "[::1]:1", "127.0.0.1:{port}:1"])
def test_requests_for_another_host_are_refused(served: tuple[StillroomServer, Path], client: openai.OpenAI,
                                               host: str) -> None:
    server, ledger_file = served
    before = row_count(ledger_file)
    request = post("/v1/completions", completion_body(), {"Host": host.format(port=server.port)})
    error = assert_openai_error(*exchange(server, request), 421, "host_not_allowed")
    assert "127.0.0.1" in error["message"]
    get = f"GET /v1/models HTTP/1.1\r\nHost: {host.format(port=server.port)}\r\n\r\n".encode()
    assert_openai_error(*exchange(server, get), 421, "host_not_allowed")
    assert row_count(ledger_file) == before
    still_answers(client)


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "LOCALHOST:{port}",
                                  "127.0.0.1"])
def test_the_servers_own_names_are_served(served: tuple[StillroomServer, Path], host: str) -> None:
    request = f"GET /v1/models HTTP/1.1\r\nHost: {host.format(port=served[0].port)}\r\n\r\n".encode()
    status, _, body = exchange(served[0], request)
    assert status == 200 and MODEL in {model["id"] for model in json.loads(body)["data"]}


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1", "https://127.0.0.1:{port}",
                                    "http://localhost:1"])
def test_cross_origin_requests_are_refused(served: tuple[StillroomServer, Path], client: openai.OpenAI,
                                           origin: str) -> None:
    server, ledger_file = served
    before = row_count(ledger_file)
    request = post("/v1/completions", completion_body(), {"Origin": origin.format(port=server.port)})
    assert_openai_error(*exchange(server, request), 403, "cross_origin_refused")
    assert row_count(ledger_file) == before
    own = post("/v1/completions", completion_body(), {"Origin": f"http://127.0.0.1:{server.port}"})
    status, _, body = exchange(server, own)
    assert status == 200 and json.loads(body)["choices"]
    still_answers(client)


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain;charset=UTF-8",
                                          "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                          None])
def test_bodies_not_declared_json_are_refused(served: tuple[StillroomServer, Path], client: openai.OpenAI,
                                              content_type: str | None) -> None:
    server, ledger_file = served
    before = row_count(ledger_file)
    request = post("/v1/completions", completion_body(), {"Content-Type": content_type or ""})
    if content_type is None:
        request = request.replace(b"Content-Type: \r\n", b"")
    error = assert_openai_error(*exchange(server, request), 415, "unsupported_media_type")
    assert "application/json" in error["message"]
    assert row_count(ledger_file) == before
    status, _, _ = exchange(server, post("/v1/completions", completion_body(),
                                         {"Content-Type": "application/json; charset=utf-8"}))
    assert status == 200
    still_answers(client)


# -- what an over-context request logs -------------------------------------------------------------


def test_an_over_context_prompt_is_logged_as_an_excerpt(served: tuple[StillroomServer, Path],
                                                        client: openai.OpenAI) -> None:
    ledger_file = served[1]
    prompt = "word " * 200_000  # 1 MB, far beyond the 512-token context
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model=MODEL, prompt=prompt, max_tokens=1,
                                  extra_headers={"X-Stillroom-Workflow": "huge-prompt"})
    assert info.value.body["code"] == "context_length_exceeded"
    [row] = rows(ledger_file, workflow="huge-prompt")
    assert row["status"] == "error" and len(row["prompt"]) == EXCERPT_CHARS and prompt.startswith(row["prompt"])
    cut = row["meta"]["log_excerpt"]["prompt"]
    assert cut["sha256"] == hashlib.sha256(prompt.encode()).hexdigest() and cut["chars"] == len(prompt)
    assert row["prompt_hash"] == content_hash(prompt)  # still matches a dataset holding the whole prompt
    assert "not logged in full" in row["error"]
    still_answers(client)


def test_an_over_context_chat_keeps_a_bounded_number_of_messages(served: tuple[StillroomServer, Path],
                                                                 client: openai.OpenAI) -> None:
    ledger_file = served[1]
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "x" * 5000}
                for i in range(41)]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=messages, max_tokens=1,
                                       extra_headers={"X-Stillroom-Workflow": "huge-chat"})
    [row] = rows(ledger_file, workflow="huge-chat")
    assert len(row["messages"]) == 16 and all(len(m["content"]) <= EXCERPT_CHARS for m in row["messages"])
    assert row["messages"][0]["content"].startswith("turn 0 ") and row["messages"][-1]["content"].startswith("turn 40")
    assert row["meta"]["log_excerpt"]["messages"]["count"] == 41
    assert len(json.dumps(row)) < 100_000


# -- workflow names from clients -----------------------------------------------------------------------


@pytest.mark.parametrize("name,fragment", [
    ("\x1b[2J\x1b[31mpwned", "non-printable"),
    ("ok\x07bell", "non-printable"),
    ("a" * 201, "201 characters"),
    ("lab:direct", "reserved"),
    ("LAB:Direct", "reserved"),
    ("right-to-left \u202eexploit", "non-printable"),
])
def test_bad_workflow_names_are_refused(served: tuple[StillroomServer, Path], client: openai.OpenAI,
                                        name: str, fragment: str) -> None:
    server, ledger_file = served
    before = row_count(ledger_file)
    request = post("/v1/completions", completion_body(), {"X-Stillroom-Workflow": "WF"})
    request = request.replace(b"X-Stillroom-Workflow: WF", b"X-Stillroom-Workflow: " + name.encode("utf-8"))
    error = assert_openai_error(*exchange(server, request), 400, "invalid_workflow")
    assert fragment in error["message"]
    assert row_count(ledger_file) == before
    still_answers(client)


def test_a_nul_in_a_header_is_refused(served: tuple[StillroomServer, Path]) -> None:
    server, ledger_file = served
    before = row_count(ledger_file)
    request = post("/v1/completions", completion_body(), {"X-Stillroom-Workflow": "a\x00b"})
    status, headers, body = exchange(server, request)
    assert 400 <= status < 500 and json.loads(body)["error"]["message"]
    assert row_count(ledger_file) == before


def test_good_workflow_names_are_kept(served: tuple[StillroomServer, Path]) -> None:
    server, ledger_file = served
    for name in ("w" * 200, "café ✓ run 3", "labels:v2"):
        request = post("/v1/completions", completion_body(), {"X-Stillroom-Workflow": "WF"})
        request = request.replace(b"X-Stillroom-Workflow: WF", b"X-Stillroom-Workflow: " + name.encode("utf-8"))
        status, _, _ = exchange(server, request)
        assert status == 200
        assert len(rows(ledger_file, workflow=name)) == 1


# -- strict HTTP -----------------------------------------------------------------------------------


def _read_all(sock: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return received


def test_a_gets_body_is_not_run_as_a_second_request(served: tuple[StillroomServer, Path],
                                                    client: openai.OpenAI) -> None:
    server, ledger_file = served
    before = row_count(ledger_file)
    smuggled = post("/v1/completions", completion_body(), {"X-Stillroom-Workflow": "smuggled"})
    request = (f"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(smuggled)}\r\n\r\n"
               ).encode() + smuggled
    with socket.create_connection((server.host, server.port), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        received = _read_all(sock)
    assert received.count(b"HTTP/1.1 ") == 1, received[:500]
    status, _, body = parse(received)
    assert status == 400 and "no body" in json.loads(body)["error"]["message"]
    assert row_count(ledger_file) == before and not rows(ledger_file, workflow="smuggled")
    still_answers(client)


@pytest.mark.parametrize("length", ["4_9", "+49", " 0x31", "\u0664\u0669"])
def test_content_length_must_be_plain_digits(served: tuple[StillroomServer, Path], client: openai.OpenAI,
                                             length: str) -> None:
    body = completion_body()
    body = body + b" " * (49 - len(body)) if len(body) < 49 else body
    request = post("/v1/completions", body[:49], length="LEN").replace(b"LEN", length.encode("utf-8"))
    assert_openai_error(*exchange(served[0], request), 400, "invalid_request")
    still_answers(client)


def test_a_header_line_the_parser_cannot_read_is_refused(served: tuple[StillroomServer, Path],
                                                         client: openai.OpenAI) -> None:
    """"Content-Length : N" (a space before the colon) ends the standard library's header block:
    the length vanished, so the body was read as the next request."""
    server, ledger_file = served
    before = row_count(ledger_file)
    smuggled = post("/v1/completions", completion_body(), {"X-Stillroom-Workflow": "smuggled"})
    request = (f"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length : {len(smuggled)}\r\n\r\n"
               ).encode() + smuggled
    with socket.create_connection((server.host, server.port), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        received = _read_all(sock)
    assert received.count(b"HTTP/1.1 ") == 1, received[:500]
    assert_openai_error(*parse(received), 400, "invalid_request")
    assert row_count(ledger_file) == before
    still_answers(client)


# -- slow clients --------------------------------------------------------------------------------


def test_one_address_with_64_stalled_connections_does_not_lock_others_out(served: tuple[StillroomServer, Path],
                                                                          client: openai.OpenAI) -> None:
    server = served[0]
    stalled: list[socket.socket] = []
    refused = 0
    try:
        for _ in range(64):
            sock = socket.create_connection((server.host, server.port), timeout=SOCKET_TIMEOUT_S,
                                            source_address=("127.0.0.2", 0))
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and then nothing
            stalled.append(sock)
        time.sleep(0.5)
        for sock in stalled:
            sock.setblocking(False)
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            sock.setblocking(True)
            status, _, body = parse(data + _read_all(sock))
            assert status == 429 and json.loads(body)["error"]["code"] == "too_many_connections"
            refused += 1
        assert refused == 64 - http_server.MAX_CONNECTIONS_PER_ADDRESS
        still_answers(client)  # another address (127.0.0.1) is served meanwhile
        fresh = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0, timeout=120)
        assert fresh.models.list().data
    finally:
        for sock in stalled:
            sock.close()


def _trickle(sock: socket.socket, data: bytes, limit_s: float) -> tuple[float, bytes]:
    """Send `data` a byte every 0.25 s until the server answers or ends the connection (or
    `limit_s` passes); returns the seconds that took and what the server sent."""
    started = time.monotonic()
    sock.settimeout(0.25)
    for byte in data:
        if time.monotonic() - started > limit_s:
            break
        try:
            sock.sendall(bytes([byte]))
            received = sock.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started, b""
        sock.settimeout(SOCKET_TIMEOUT_S)
        return time.monotonic() - started, received + (_read_all(sock) if received else b"")
    return time.monotonic() - started, b""


def test_trickled_headers_meet_a_deadline(served: tuple[StillroomServer, Path], client: openai.OpenAI,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guarded_handler, "HEADER_TIMEOUT_S", 2)
    server = served[0]
    with socket.create_connection((server.host, server.port), timeout=SOCKET_TIMEOUT_S) as sock:
        headers = b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 200
        held, received = _trickle(sock, headers, limit_s=30)
    assert received == b""  # no request yet: the connection is just closed
    assert held < 10, f"a client trickling its headers held its connection for {held:.1f} s"
    still_answers(client)


def test_a_trickled_body_meets_a_deadline(served: tuple[StillroomServer, Path], client: openai.OpenAI,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guarded_handler, "BODY_TIMEOUT_S", 2)
    server = served[0]
    body = completion_body(prompt="a" * 400)
    with socket.create_connection((server.host, server.port), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.sendall(post("/v1/completions", b"", length=len(body)))
        held, received = _trickle(sock, body, limit_s=30)
    assert_openai_error(*parse(received), 408, "request_timeout")
    assert held < 10, f"a client trickling its body held its connection for {held:.1f} s"
    still_answers(client)


def test_key_creation_applies_the_workflow_rules(tmp_path: Path) -> None:
    """A key can only be made for a workflow a client could name itself: no escapes, not lab:, bounded."""
    from app.core.serve.api_keys import create_key
    from app.core.store import Ledger

    ledger = Ledger.open(tmp_path / "ledger.db")
    try:
        for bad in ("evil\x1b[2Jname", "lab:teacher", "x" * 201):
            with pytest.raises(ValueError):
                create_key(ledger.db, "k", bad)
        with pytest.raises(ValueError, match="key name"):
            create_key(ledger.db, "bad\x07name", "ok-workflow")
        record, secret = create_key(ledger.db, "  nice  ", "  café ✓  ")
        assert record.workflow == "café ✓" and record.name == "nice" and secret.startswith("sk-stillroom-")
    finally:
        ledger.close()


def test_a_client_that_hangs_up_early_leaves_no_traceback(served: tuple[StillroomServer, Path],
                                                          client: openai.OpenAI,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    """Clients that reset the connection before reading their answer are routine: the server's
    terminal gets no 'Exception occurred during processing of request' traceback for them."""
    server, _ = served
    request = post("/v1/completions", completion_body(), {"Origin": "https://evil.example"})
    for _ in range(20):
        sock = socket.create_connection((server.host, server.port), timeout=SOCKET_TIMEOUT_S)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
        sock.sendall(request)
        sock.close()
    still_answers(client)
    time.sleep(0.5)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err[-2000:]
