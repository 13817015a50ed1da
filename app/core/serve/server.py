"""The local HTTP server: OpenAI-compatible endpoints over the ModelHost, logged to the ledger.

Binds to 127.0.0.1 by default. On any other address every request needs a valid API key; on any
address a key that looks like ours (sk-stillroom-) but is unknown or revoked gets 401. Requests
addressed to another Host, sent from another Origin or not declared JSON are refused (see
request_guard). Each request is handled on its own thread; generations queue on the one model thread.
"""

from __future__ import annotations

import io
import ipaddress
import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from app import __version__
from app.core.embedding import LoggedEmbedding
from app.core.errors import ContextLengthError, StillroomError
from app.core.generation import LogContext
from app.core.log_excerpt import bounded_value
from app.core.models.runner import LoadedModel, LoadOptions
from app.core.serve import anthropic_api, responses_api
from app.core.serve.api_keys import KEY_PREFIX, ApiKey, has_live_keys, lookup_key
from app.core.serve.catalog import EMBEDDING_KIND, EMBEDDINGS_ENDPOINT, ENCODER_ROLE, ServedModel, load_catalog
from app.core.serve.catalog import pick_model
from app.core.serve.embeddings_api import embeddings_response, parse_embeddings
from app.core.serve.encoder_host import EncoderHost
from app.core.serve.http_server import DeadlineReader, LimitedHTTPServer
from app.core.serve.endpoints import ENDPOINTS
from app.core.serve.model_host import HostBusyError, Job, ModelHost
from app.core.serve.openai_api import ApiError, new_id, now
from app.core.serve.openai_handler import MAX_LOGGED_EXTRAS_CHARS, Caller, api_error, start_openai
from app.core.serve.request_guard import check_framing, check_host, check_json_body, check_origin, check_workflow
from app.core.store import open_db

LOG = logging.getLogger("stillroom.serve")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
MAX_BODY_BYTES = 8 * 1024 * 1024  # larger request bodies get 413
MAX_DISCARD_BYTES = 64 * 1024 * 1024  # up to this much of a refused body is read away, so the client sees the 413
IDLE_TIMEOUT_S = 120  # a client silent this long (mid-headers or mid-body) is dropped (408 once headers came)
HEADER_TIMEOUT_S = 20  # a request line and headers must arrive within this (idle keep-alive included)
BODY_TIMEOUT_S = 30  # a body must arrive within this plus its size at MIN_BODY_RATE, or 408
MIN_BODY_RATE = 64 * 1024  # bytes per second
MAX_LOGGED_HEADER_CHARS = 256  # of a client's User-Agent, in the row's meta
ALLOWED_METHODS = "GET, POST"
WORKFLOW_HEADER = "X-Stillroom-Workflow"
DEFAULT_WORKFLOW = "api"
ANTHROPIC_PATH = "/v1/messages"  # its errors take Anthropic's shape
API_NAMES = {"chat": "chat.completions", "completions": "completions", "embeddings": "embeddings",
             "responses": "responses", "messages": "messages"}  # meta.server.api of each handler kind's rows


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class StillroomServer:
    """An OpenAI-compatible server over the registered models, one loaded at a time (a request naming
    another switches it). start() returns once it listens."""

    def __init__(self, ledger_path: Path, model_ref: str | None = None, *, host: str = DEFAULT_HOST,
                 port: int = DEFAULT_PORT, options: LoadOptions = LoadOptions(),
                 require_key: bool | None = None, model_host: ModelHost | None = None) -> None:
        """`model_host` lets an application that already owns a model thread (the desktop app)
        serve through it: any object with ModelHost's start/stop/submit/loaded will do. Without
        one, the server loads `model_ref` on a ModelHost of its own."""
        self.host, self.port = host, port
        self.require_key = (not is_loopback(host)) if require_key is None else require_key
        self.model_host = model_host or ModelHost(ledger_path, model_ref, options)
        self.encoder_host = EncoderHost(ledger_path)
        self._keys_db = open_db(ledger_path)
        self._keys_lock = threading.Lock()
        self._httpd: LimitedHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL clients use (http://host:port/v1)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def start(self) -> LoadedModel:
        """Load the model and start listening. Raises StillroomError if either fails."""
        if self.require_key and not has_live_keys(self._keys_db):
            raise StillroomError(f"listening on {self.host} needs an API key; create one with "
                                 "`stillroom keys create --workflow NAME`")
        loaded = self.model_host.start()
        try:
            self._httpd = LimitedHTTPServer((self.host, self.port), _Handler, self)
        except OSError as exc:
            self.model_host.stop()
            raise StillroomError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from exc
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="stillroom-http", daemon=True)
        self._thread.start()
        LOG.info("serving %s at %s", loaded.info.name, self.url)
        return loaded

    def stop(self) -> None:
        """Stop accepting requests, finish the running generation, unload the model."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        self.model_host.stop()
        self.encoder_host.close()
        self._keys_db.close()

    def model_id(self) -> str:
        """The id /v1/models reports for the model loaded now."""
        return Path(self.model_host.loaded.info.path).stem

    def catalog(self) -> list[ServedModel]:
        """Every registered model whose file is present (what /v1/models lists)."""
        with self._keys_lock:
            return load_catalog(self._keys_db)

    def pick_model(self, body: Any, endpoint: str) -> ServedModel | None:
        """The registered model a request body names (see catalog.pick_model); None when the body
        names none (its parser reports that). Raises ApiError 404 for a name no model has, 400 for
        a model of the wrong kind (an embedding model asked for text, or the reverse)."""
        requested = body.get("model") if isinstance(body, dict) else None
        if not isinstance(requested, str) or not requested:
            return None
        catalog = self.catalog()
        chosen = pick_model(catalog, requested, endpoint)
        if chosen is None:
            names = ", ".join(f"'{m.id}'" for m in catalog) or "none"
            raise ApiError(404, f"the model '{requested}' does not exist here; this server has {names}",
                           "model", "model_not_found")
        if (chosen.kind == EMBEDDING_KIND) != (endpoint == EMBEDDINGS_ENDPOINT):
            wanted = EMBEDDING_KIND if endpoint == EMBEDDINGS_ENDPOINT else "text-generation"
            names = ", ".join(f"'{m.id}'" for m in catalog if (m.kind == EMBEDDING_KIND) == (wanted == EMBEDDING_KIND))
            doing = "embeds text" if chosen.kind == EMBEDDING_KIND else "generates text"
            raise ApiError(400, f"the model '{requested}' {doing}; this endpoint needs a {wanted} model: "
                                f"{names or 'none is registered'}", "model", "model_not_supported")
        return chosen

    def authorize(self, header: str | None, *, public: bool = False, api_key: str | None = None) -> ApiKey | None:
        """The API key of the request; see authorize_request."""
        return authorize_request(self._keys_db, self._keys_lock, self.require_key, header, public=public,
                                 api_key=api_key)


def authorize_request(keys_db: Any, lock: threading.Lock, require_key: bool, header: str | None, *,
                      public: bool = False, api_key: str | None = None) -> ApiKey | None:
    """The API key of a request (the Authorization bearer token, else the `api_key` an Anthropic
    client sends as x-api-key); None when keys are optional (or the endpoint is `public`) and none
    came, or a token that is not a Stillroom key (clients must send something). A Stillroom key that
    is unknown or revoked is refused (401) everywhere."""
    secret = header[7:].strip() if header and header.lower().startswith("bearer ") else None
    secret = secret or (api_key or "").strip() or None
    key = None
    if secret:
        with lock:
            key = lookup_key(keys_db, secret)
        if key is None and secret.startswith(KEY_PREFIX):
            raise ApiError(401, "this API key is unknown or has been revoked; create one with "
                                "`stillroom keys create --workflow NAME`", None, "invalid_api_key",
                           "authentication_error")
    if key is None and require_key and not public:
        raise ApiError(401, "a valid API key is required (Authorization: Bearer ...)", None,
                       "invalid_api_key", "authentication_error")
    return key


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S
    server: LimitedHTTPServer
    server_version = f"Stillroom/{__version__}"

    def log_message(self, fmt: str, *args: Any) -> None:  # noqa: D102 - http.server hook
        LOG.debug("%s %s", self.address_string(), fmt % args)

    def setup(self) -> None:  # noqa: D102 - socketserver hook: reads go through a DeadlineReader
        super().setup()
        self.rfile.close()  # the plain file http.server made; the socket stays open
        self._reader = DeadlineReader(self.connection, lambda: self.timeout)
        self.rfile = io.BufferedReader(self._reader)
        self._body_length = 0

    def handle_one_request(self) -> None:  # noqa: D102 - the next request line and headers have a deadline
        self._reader.deadline = time.monotonic() + HEADER_TIMEOUT_S
        super().handle_one_request()

    def parse_request(self) -> bool:
        """http.server's parsing, then request_guard.check_framing's stricter rules (400/411); the
        body then gets its deadline."""
        if not super().parse_request():
            return False
        try:
            self._body_length = check_framing(self.headers, self.command, self.request_version)
        except ApiError as exc:
            self._send_json(exc.status, exc.body())
            return False
        self._reader.deadline = time.monotonic() + BODY_TIMEOUT_S + self._body_length / MIN_BODY_RATE
        return True

    # -- plumbing --------------------------------------------------------------------------

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status >= 400:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def _read_json(self) -> Any:
        check_json_body(self.headers.get("Content-Type"))
        length = self._body_length
        if length > MAX_BODY_BYTES:
            if length <= MAX_DISCARD_BYTES:  # read it away, so the client can read our answer
                remaining = length
                while remaining > 0 and (block := self._read(min(remaining, 1 << 16))):
                    remaining -= len(block)
            raise ApiError(413, f"the request body is larger than {MAX_BODY_BYTES} bytes", None, "request_too_large")
        raw = self._read(length) if length > 0 else b""
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, f"the request body is not valid JSON ({exc})", None, "invalid_json") from exc
        except (ValueError, RecursionError) as exc:  # integers of over 4,300 digits, nesting too deep
            raise ApiError(400, f"the request body is not JSON this server can read ({exc})", None,
                           "invalid_json") from exc

    def _read(self, size: int) -> bytes:
        """Up to `size` bytes of the body; 408 when the client stops sending for IDLE_TIMEOUT_S, or
        the body's deadline passes (BODY_TIMEOUT_S plus its size at MIN_BODY_RATE)."""
        try:
            return self.rfile.read(size)
        except TimeoutError as exc:
            raise ApiError(408, f"the request body did not arrive in time (a pause of at most {self.timeout} s, "
                                f"all of it within {BODY_TIMEOUT_S} s plus {MIN_BODY_RATE // 1024} KiB/s)",
                           None, "request_timeout") from exc

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (malformed request line or headers, unknown method) as OpenAI-style
        JSON instead of its HTML page; an unknown method is 405 with an Allow header."""
        status = HTTPStatus(code)
        if status == HTTPStatus.NOT_IMPLEMENTED:
            status = HTTPStatus.METHOD_NOT_ALLOWED
            message = f"method {self.command} is not allowed here; use {ALLOWED_METHODS}"
        text = message or status.phrase
        if explain:
            text = f"{text}: {explain}"
        code_name = status.phrase.lower().replace(" ", "_").replace("-", "_")
        data = json.dumps(ApiError(status.value, text, None, code_name).body()).encode("utf-8")
        self.log_error("code %d, message %s", status.value, text)
        if self.request_version == "HTTP/0.9":  # an unreadable request line: answer with a status line anyway
            self.request_version = "HTTP/1.0"
        self.send_response(status.value, status.phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == HTTPStatus.METHOD_NOT_ALLOWED:
            self.send_header("Allow", ALLOWED_METHODS)
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _guard(self, action: Any) -> None:
        try:
            action()
        except ApiError as exc:
            self._send_error(exc)
        except HostBusyError as exc:
            self._send_error(ApiError(503, str(exc), None, "server_busy", "server_error"))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - the server keeps serving
            LOG.exception("request failed")
            self._send_error(ApiError(500, f"internal error: {exc}", None, "internal_error", "server_error"))

    def _send_error(self, exc: ApiError) -> None:
        """An error in the shape of the API the request spoke: Anthropic's on /v1/messages, else OpenAI's."""
        anthropic = self.path.split("?", 1)[0].rstrip("/") == ANTHROPIC_PATH
        self._send_json(exc.status, anthropic_api.error_body(exc) if anthropic else exc.body())

    # -- routes ----------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._guard(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._guard(self._post)

    def _admit(self, path: str) -> ApiKey | None:
        """Host, Origin and API key checks every request passes first; returns the key, if any."""
        app = self.server.app
        check_host(self.headers.get("Host"), app.host, app.port)
        check_origin(self.headers.get("Origin"), app.host, app.port)
        return app.authorize(self.headers.get("Authorization"), public=path == "/health",
                             api_key=self.headers.get("x-api-key"))

    def _workflow(self, key: ApiKey | None) -> str:
        """The key's workflow, else the client's header (validated), else DEFAULT_WORKFLOW."""
        if key is not None:
            return key.workflow
        raw = self.headers.get(WORKFLOW_HEADER) or ""
        try:  # http.server reads header bytes as Latin-1; most clients send UTF-8
            raw = raw.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
        return check_workflow(raw) if raw.strip() else DEFAULT_WORKFLOW

    def _get(self) -> None:
        app = self.server.app
        path = self.path.split("?", 1)[0].rstrip("/")
        self._admit(path)
        if path == "/health":
            self._send_json(200, {"status": "ok"})
            return
        if path == "/v1/models":
            created = now()
            self._send_json(200, {"object": "list", "data": [m.as_openai(created) for m in app.catalog()]})
            return
        raise ApiError(404, f"unknown endpoint {path}", None, "not_found")

    def _post(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        key = self._admit(path)
        endpoint = next((e for e in ENDPOINTS if e.path == path and e.method == "POST"), None)
        if endpoint is None:
            raise ApiError(404, f"unknown endpoint {path}", None, "not_found")
        assert endpoint.kind is not None
        caller = Caller(self._workflow(key), path, key.name if key else None,
                        _clip(self.headers.get("User-Agent"), MAX_LOGGED_HEADER_CHARS), {"api": API_NAMES[endpoint.kind]})
        body = self._read_json()
        routes = {"embeddings": self._embeddings, "responses": self._responses, "messages": self._messages}
        if endpoint.kind in routes:
            routes[endpoint.kind](body, caller)
            return
        started = start_openai(self.server.app, endpoint.kind, body, caller)
        try:
            if started.stream:
                self._send_events(_openai_events(started.chunks()))
            else:
                self._send_json(200, started.response())
        except BaseException:
            started.cancel()
            raise

    def _embeddings(self, body: Any, caller: Caller) -> None:
        """/v1/embeddings: the bundled encoder on this thread, an embedding GGUF on the model host."""
        app = self.server.app
        chosen = app.pick_model(body, EMBEDDINGS_ENDPOINT)
        parsed = parse_embeddings(body, chosen.dimensions if chosen else None)
        assert chosen is not None  # the parser refused a body without a model
        meta = {"endpoint": caller.endpoint, "request_id": new_id("embd"), "api_key": caller.api_key,
                "client": caller.client, "stream": False,
                "extras": bounded_value(parsed.extras, MAX_LOGGED_EXTRAS_CHARS) or None} | caller.meta
        context = LogContext("server", workflow=caller.workflow, meta={"server": meta})
        try:
            if chosen.role == ENCODER_ROLE:
                logged = app.encoder_host.embed(parsed.request, context, chosen.sha256, chosen.name)
            else:
                logged = _collect_embedding(app.model_host.submit(parsed.request, context, chosen.sha256))
        except ContextLengthError as exc:
            raise ApiError(400, str(exc), "input", "context_length_exceeded") from exc
        except (StillroomError, ValueError) as exc:
            raise api_error(exc) from exc
        result = logged.result
        self._send_json(200, embeddings_response(result.vectors, parsed.encoding_format, chosen.id,
                                                 result.prompt_tokens, logged.generation_id))

    def _responses(self, body: Any, caller: Caller) -> None:
        """/v1/responses: the Responses request as a chat completion, its answer back as a Response."""
        chat, context = responses_api.to_chat(body)
        started = start_openai(self.server.app, "chat", chat, _noting(caller, context.extras))
        try:
            if not started.stream:
                self._send_json(200, responses_api.from_chat(started.response(), context))
                return
            events = responses_api.ResponseEvents(context, started.model_id)
            self._send_events(_translated(started.chunks(), events))
        except BaseException:
            started.cancel()
            raise

    def _messages(self, body: Any, caller: Caller) -> None:
        """/v1/messages: the Messages request as a chat completion, its answer back as a Message."""
        version = anthropic_api.check_version(self.headers.get(anthropic_api.VERSION_HEADER))
        chat = anthropic_api.to_chat(body)
        extras = anthropic_api.extras(body) | {"anthropic_version": version}
        started = start_openai(self.server.app, "chat", chat, _noting(caller, extras))
        try:
            if not started.stream:
                self._send_json(200, anthropic_api.from_chat(started.response()))
                return
            events = anthropic_api.MessageEvents(anthropic_api.MessageIds(anthropic_api.new_id("msg"), started.model_id))
            self._send_events(_translated(started.chunks(), events))
        except BaseException:
            started.cancel()
            raise

    def _send_events(self, events: Iterator[tuple[str | None, Any]]) -> None:
        """Server-sent events: `event: NAME` when the event is named, then `data: JSON`. The first
        event is awaited before the headers, so that a request the model cannot serve still gets a
        JSON error with a 4xx status."""
        first = next(events, None)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for name, payload in itertools.chain([first] if first is not None else [], events):
            text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
            self.wfile.write((f"event: {name}\n" if name else "").encode("utf-8") + f"data: {text}\n\n".encode("utf-8"))
            self.wfile.flush()


def _noting(caller: Caller, extras: dict[str, Any]) -> Caller:
    """`caller` with a translated request's untranslated fields in its rows' meta.server.extras."""
    return replace(caller, meta=caller.meta | {"extras": bounded_value(extras, MAX_LOGGED_EXTRAS_CHARS) or None})


def _openai_events(chunks: Iterator[dict[str, Any]]) -> Iterator[tuple[str | None, Any]]:
    """OpenAI's stream: each chunk as a data-only event, an error after the first as an error
    object, and "[DONE]" at the end. An error before the first chunk is raised (a 4xx answer)."""
    first = next(chunks, None)
    try:
        if first is not None:
            yield None, first
            for chunk in chunks:
                yield None, chunk
    except ApiError as exc:
        yield None, exc.body()
        return
    yield None, "[DONE]"


def _translated(chunks: Iterator[dict[str, Any]], events: Any) -> Iterator[tuple[str | None, Any]]:
    """Chat chunks as another API's named events (responses_api.ResponseEvents or
    anthropic_api.MessageEvents): start() once the first chunk is in, feed(chunk) for each, then
    finish(), or fail(error) for an error mid-stream. An error before the first chunk is raised."""
    first = next(chunks, None)
    yield from events.start()
    try:
        for chunk in itertools.chain([first] if first is not None else [], chunks):
            yield from events.feed(chunk)
    except ApiError as exc:
        yield from events.fail(exc)
        return
    yield from events.finish()


def _collect_embedding(job: Job) -> LoggedEmbedding:
    """The one event of an embedding job (its error re-raised)."""
    found = [item for item in job.stream() if isinstance(item, LoggedEmbedding)]
    assert len(found) == 1
    return found[0]


def _clip(text: str | None, limit: int) -> str | None:
    return text if text is None or len(text) <= limit else text[:limit] + "..."
