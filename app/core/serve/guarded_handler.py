"""What every Stillroom listener shares (the local server and the logging proxy): the hardened HTTP
handler (deadlines for headers and body, strict framing, JSON bodies within a size, errors as JSON),
the Host/Origin/API-key admission every request passes first, the workflow a request is logged
under, and the listener's start and stop. Each server subclasses GuardedHandler with its routes."""

from __future__ import annotations

import io
import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from app import __version__
from app.core.errors import StillroomError
from app.core.serve.api_keys import KEY_PREFIX, ApiKey, has_live_keys, lookup_key
from app.core.serve.http_server import DeadlineReader, LimitedHTTPServer, Slots
from app.core.serve.openai_api import ApiError
from app.core.serve.request_guard import check_framing, check_host, check_json_body, check_origin, check_workflow
from app.core.store import open_db

LOG = logging.getLogger("stillroom.serve")
DEFAULT_HOST = "127.0.0.1"
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


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def client_name(user_agent: str | None) -> str | None:
    """A client's User-Agent as logged: at most MAX_LOGGED_HEADER_CHARS, None when absent."""
    if not user_agent:
        return None
    return user_agent if len(user_agent) <= MAX_LOGGED_HEADER_CHARS else user_agent[:MAX_LOGGED_HEADER_CHARS] + "..."


class KeyGate:
    """The API keys a listener checks (its own connection to the ledger, one lock). Keys are
    required off loopback unless `require_key` says otherwise."""

    def __init__(self, ledger_path: Path, host: str, require_key: bool | None) -> None:
        self.host = host
        self.require_key = (not is_loopback(host)) if require_key is None else require_key
        self.db = open_db(ledger_path)
        self.lock = threading.Lock()

    def check_startable(self) -> None:
        """StillroomError when keys are required and none is live."""
        if self.require_key and not has_live_keys(self.db):
            raise StillroomError(f"listening on {self.host} needs an API key; create one with "
                                 "`stillroom keys create --workflow NAME`")

    def authorize(self, header: str | None, *, public: bool = False, api_key: str | None = None) -> ApiKey | None:
        """The API key of a request (the Authorization bearer token, else the `api_key` an Anthropic
        client sends as x-api-key); None when keys are optional (or the endpoint is `public`) and
        none came, or a token that is not a Stillroom key (clients must send something). A
        Stillroom key that is unknown or revoked is refused (401) everywhere."""
        secret = header[7:].strip() if header and header.lower().startswith("bearer ") else None
        secret = secret or (api_key or "").strip() or None
        key = None
        if secret:
            with self.lock:
                key = lookup_key(self.db, secret)
            if key is None and secret.startswith(KEY_PREFIX):
                raise ApiError(401, "this API key is unknown or has been revoked; create one with "
                                    "`stillroom keys create --workflow NAME`", None, "invalid_api_key",
                               "authentication_error")
        if key is None and self.require_key and not public:
            raise ApiError(401, "a valid API key is required (Authorization: Bearer ...)", None,
                           "invalid_api_key", "authentication_error")
        return key

    def close(self) -> None:
        """Close the keys' connection."""
        self.db.close()


class ListeningServer:
    """What the local server and the proxy share as listeners: an address, a KeyGate (`keys`), the
    base URL clients use and whether keys are required. Subclasses set host, port and keys."""

    host: str
    port: int
    keys: KeyGate

    @property
    def require_key(self) -> bool:
        """Whether every request needs an API key (see KeyGate)."""
        return self.keys.require_key

    @require_key.setter
    def require_key(self, value: bool) -> None:
        self.keys.require_key = value

    @property
    def url(self) -> str:
        """The base URL clients use (http://host:port/v1)."""
        return base_url(self.host, self.port)


class Listener:
    """A LimitedHTTPServer on its own thread: start() binds (StillroomError when it cannot) and returns
    the port it got; stop() stops accepting and closes the socket."""

    def __init__(self, host: str, port: int, handler: type, app: Any) -> None:
        self.host, self.port, self.handler, self.app = host, port, handler, app
        self._httpd: LimitedHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Listen on host:port (port 0: any free one); returns the port."""
        try:
            self._httpd = LimitedHTTPServer((self.host, self.port), self.handler, self.app)
        except OSError as exc:
            raise StillroomError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from exc
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="stillroom-http", daemon=True)
        self._thread.start()
        return self.port

    @property
    def slots(self) -> Slots:
        """The connections being served, against their limits (the listener must be started)."""
        assert self._httpd is not None, "the listener is not started"
        return self._httpd.slots

    def stop(self) -> None:
        """Stop accepting requests and close the socket (a listener never started: nothing to do)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


def base_url(host: str, port: int) -> str:
    """The base URL clients use (http://host:port/v1)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


class GuardedHandler(BaseHTTPRequestHandler):
    """http.server's handler with Stillroom's rules; `server.app` needs host, port and a KeyGate `keys`."""

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

    def route(self) -> str:
        """The request's path without its query or a trailing slash."""
        return self.path.split("?", 1)[0].rstrip("/")

    def _admit(self, path: str) -> ApiKey | None:
        """Host, Origin and API key checks every request passes first; returns the key, if any."""
        app = self.server.app
        check_host(self.headers.get("Host"), app.host, app.port)
        check_origin(self.headers.get("Origin"), app.host, app.port)
        return app.keys.authorize(self.headers.get("Authorization"), public=path == "/health",
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

    def _guard(self, action: Callable[[], None]) -> None:
        """Run a route: an ApiError becomes its JSON answer, a client that hung up ends the
        connection, anything else is a 500 (the server keeps serving)."""
        try:
            action()
        except ApiError as exc:
            self._send_error(exc)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - the server keeps serving
            LOG.exception("request failed")
            self._send_error(ApiError(500, f"internal error: {exc}", None, "internal_error", "server_error"))

    def _send_error(self, exc: ApiError) -> None:
        """An error as OpenAI's JSON (a subclass may answer in another API's shape)."""
        self._send_json(exc.status, exc.body())

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

    def _read_raw_body(self) -> bytes:
        """The body's bytes (declared JSON), at most MAX_BODY_BYTES: a larger one is read away (up
        to MAX_DISCARD_BYTES, so the client can read the answer) and refused with 413."""
        check_json_body(self.headers.get("Content-Type"))
        length = self._body_length
        if length > MAX_BODY_BYTES:
            if length <= MAX_DISCARD_BYTES:
                remaining = length
                while remaining > 0 and (block := self._read(min(remaining, 1 << 16))):
                    remaining -= len(block)
            raise ApiError(413, f"the request body is larger than {MAX_BODY_BYTES} bytes", None, "request_too_large")
        return self._read(length) if length > 0 else b""

    def _read_json(self) -> Any:
        return parse_json_body(self._read_raw_body())

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


def parse_json_body(raw: bytes) -> Any:
    """A request body's JSON; 400 naming why it cannot be read."""
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON ({exc})", None, "invalid_json") from exc
    except (ValueError, RecursionError) as exc:  # integers of over 4,300 digits, nesting too deep
        raise ApiError(400, f"the request body is not JSON this server can read ({exc})", None,
                       "invalid_json") from exc
