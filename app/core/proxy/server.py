"""Stillroom as a logging proxy in front of any OpenAI-compatible engine (llama.cpp's server, Ollama,
LM Studio, vLLM, ...): every request is forwarded unchanged to an upstream and its answer passed back
byte for byte as it arrives; every POST and its answer then become one ledger row (source `proxy`)
with the upstream's address and the model's identity, written by a group-committing writer.

It shares the local server's HTTP layer and rules: the hardened listener and deadlines, Host and
Origin checks, API keys and the workflow header (see app.core.serve.server).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from app.core.errors import StillroomError
from app.core.models.registry import cached_sha256
from app.core.proxy.forward import FORWARDED_REQUEST_HEADERS, Relayed, UpstreamDown, open_exchange, relay
from app.core.proxy.group_writer import GroupWriter
from app.core.proxy.rows import proxied_row, unreachable_row
from app.core.proxy.upstreams import UpstreamPool
from app.core.serve.api_keys import KEY_PREFIX, ApiKey
from app.core.serve.guarded_handler import DEFAULT_HOST, GuardedHandler, KeyGate, Listener, ListeningServer, client_name
from app.core.serve.guarded_handler import parse_json_body
from app.core.serve.http_server import LimitedHTTPServer
from app.core.serve.openai_api import ApiError
from app.core.store import open_db
from app.core.store.ledger import utc_now

LOG = logging.getLogger("stillroom.proxy")
DEFAULT_PROXY_PORT = 8766
ROW_COMMIT_TIMEOUT_S = 30.0  # a request's row must be committed within this after its answer


class ProxyServer(ListeningServer):
    """Forwards to `upstreams` and logs to the ledger at `ledger_path`. start() returns once it listens."""

    def __init__(self, ledger_path: Path, upstreams: list[str], *, host: str = DEFAULT_HOST,
                 port: int = DEFAULT_PROXY_PORT, upstream_key: str | None = None,
                 require_key: bool | None = None) -> None:
        self.host, self.port = host, port
        self.ledger_path = Path(ledger_path)
        self.upstream_key = upstream_key
        self.pool = UpstreamPool(upstreams, self._hash_file)  # first: a bad URL leaves nothing open
        self.keys = KeyGate(ledger_path, host, require_key)
        self._hash_db = open_db(ledger_path)  # its own connection: hashing a model never holds up keys
        self._hash_lock = threading.Lock()
        self.writer: GroupWriter | None = None
        self.listener = Listener(host, port, _ProxyHandler, self)

    def _hash_file(self, path: Path) -> str | None:
        """A GGUF file's sha256 when the file is readable here (cached by path, size and mtime)."""
        try:
            if not path.is_file():
                return None
            with self._hash_lock:
                return cached_sha256(self._hash_db, path)
        except (OSError, StillroomError):
            return None

    def start(self) -> None:
        """Ask each upstream which models it serves, start the ledger writer and listen. Raises
        StillroomError when the address is taken or a key is needed and none exists."""
        self.keys.check_startable()
        self.pool.refresh()
        self.writer = GroupWriter(self.ledger_path)
        try:
            self.port = self.listener.start()
        except StillroomError:
            self.writer.close()
            raise
        LOG.info("proxying %s to %s", self.url, ", ".join(u.url for u in self.pool.upstreams))

    def stop(self) -> None:
        """Stop accepting requests, write the rows still queued, close the connections."""
        self.listener.stop()
        if self.writer is not None:
            self.writer.close()
        self.pool.close()
        self.keys.close()
        self._hash_db.close()

    def upstream_headers(self, incoming: Any, key: ApiKey | None) -> dict[str, str]:
        """The headers sent on: the client's content headers, and the upstream's key when one was
        given, else the client's own credentials unless they are a Stillroom key (never sent on)."""
        headers = {name: incoming[name] for name in FORWARDED_REQUEST_HEADERS if incoming.get(name)}
        if self.upstream_key:
            headers["Authorization"] = f"Bearer {self.upstream_key}"
            return headers
        for name in ("Authorization", "x-api-key"):
            value = incoming.get(name)
            if value and key is None and KEY_PREFIX not in value:
                headers[name] = value
        return headers

    def upstream_status(self) -> list[dict[str, Any]]:
        """Each upstream's address and the models it serves, with how each was identified."""
        return [{"url": u.url, "models": [i.as_meta() for i in u.identities.values()]} for u in self.pool.upstreams]


def upstream_key_from_env(name: str | None) -> str | None:
    """The upstream's API key from the environment variable `name`; an unset or empty one is an error."""
    if not name:
        return None
    value = os.environ.get(name, "").strip()
    if not value:
        raise StillroomError(f"the environment variable {name} (--upstream-key-env) is not set or empty")
    return value


class _ProxyHandler(GuardedHandler):
    """The listeners' shared handler with the proxy's routes: /health here, everything else forwarded."""

    server: LimitedHTTPServer

    def setup(self) -> None:  # noqa: D102 - socketserver hook
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm holds the
        # body until the client's delayed ACK (40 ms on Linux) arrives.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._guard(lambda: self._forward("GET"))

    def do_POST(self) -> None:  # noqa: N802
        self._guard(lambda: self._forward("POST"))

    def _forward(self, method: str) -> None:
        app: ProxyServer = self.server.app
        route = self.route()
        key = self._admit(route)
        if route == "/health":
            self._send_json(200, {"status": "ok", "upstreams": [u.url for u in app.pool.upstreams]})
            return
        raw, body = (self._read_body() if method == "POST" else (None, None))
        workflow = self._workflow(key)
        model = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None
        upstream = app.pool.pick(model)
        started_at, started = utc_now(), time.monotonic()
        context = {"workflow": workflow, "api_key": key.name if key else None, "endpoint": route,
                   "client": client_name(self.headers.get("User-Agent"))}
        try:
            conn, response = open_exchange(upstream, method, self.path, raw,
                                           app.upstream_headers(self.headers, key))
        except UpstreamDown as exc:
            if method == "POST":
                self._log(unreachable_row(route, body, upstream, str(exc), context, started_at, started))
            raise ApiError(502, str(exc), None, "upstream_unreachable", "server_error") from exc

        def finish(relayed: Relayed) -> None:
            if method == "POST":
                self._log(proxied_row(route, body, upstream, relayed, context, started_at, started))

        relay(upstream, conn, response, self, finish)

    def _read_body(self) -> tuple[bytes, Any]:
        """The raw body (sent on as is) and its JSON (for the row); 400/413/408 as the server answers."""
        raw = self._read_raw_body()
        return raw, parse_json_body(raw) if raw else None

    def _log(self, row: dict[str, Any]) -> None:
        """Hand the row to the group writer and wait for its commit (before the end of the answer goes
        out, unless the answer broke off)."""
        writer = self.server.app.writer
        assert writer is not None
        try:
            writer.submit(row).result(timeout=ROW_COMMIT_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - the answer is out; the failure goes to the log
            LOG.exception("a proxied request to %s could not be logged", row.get("runtime", {}).get("upstream"))
