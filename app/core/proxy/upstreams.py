"""The engines the proxy forwards to: their addresses, kept-alive connections, the models each serves
and which one takes a request (by model name, else in turn)."""

from __future__ import annotations

import http.client
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.core.errors import StillroomError
from app.core.proxy.identity import ModelIdentity, parse_json, probe, reported

CONNECT_TIMEOUT_S = 3.0  # a down engine is reported within this, never a hang
READ_TIMEOUT_S = 600.0  # the longest pause between two pieces of an engine's answer
PROBE_TIMEOUT_S = 5.0
MAX_PROBE_BYTES = 4 * 1024 * 1024
MAX_IDLE_CONNECTIONS = 32  # kept-alive connections per upstream
REPROBE_AFTER_S = 30.0  # an unknown model name makes the upstream be asked again, at most this often


@dataclass(frozen=True)
class Address:
    """An engine's address, split: scheme, host, port and the path before /v1 ('' or '/prefix')."""

    url: str
    scheme: str
    host: str
    port: int
    root: str


def parse_upstream(url: str) -> Address:
    """An upstream URL (http://host:port, with or without a trailing /v1) as an Address. Raises
    StillroomError for anything that is not an http(s) URL with a host."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StillroomError(f"the upstream {url!r} is not an http:// or https:// URL with a host")
    if parts.query or parts.fragment or parts.username:
        raise StillroomError(f"the upstream {url!r} must not carry a query, a fragment or credentials")
    root = parts.path.rstrip("/")
    if root.endswith("/v1"):
        root = root[:-3]
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    return Address(f"{parts.scheme}://{shown}:{port}{root}/v1", parts.scheme, host, port, root)


class Upstream:
    """One engine: a pool of kept-alive connections and the identities of the models it serves."""

    def __init__(self, url: str, hash_file: Callable[[Path], str | None]) -> None:
        self.address = parse_upstream(url)
        self._hash_file = hash_file
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self.identities: dict[str, ModelIdentity] = {}
        self._probed_at = -REPROBE_AFTER_S

    @property
    def url(self) -> str:
        """The engine's OpenAI base URL (…/v1), as rows record it."""
        return self.address.url

    def connect(self, timeout: float = READ_TIMEOUT_S) -> tuple[http.client.HTTPConnection, bool]:
        """A connection to the engine (an idle kept-alive one when there is one) and whether it was
        reused; the caller gives it back with release() or closes it."""
        with self._lock:
            if self._idle:
                conn = self._idle.pop()
                conn.timeout = timeout
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
                return conn, True
        kind = http.client.HTTPSConnection if self.address.scheme == "https" else http.client.HTTPConnection
        conn = kind(self.address.host, self.address.port, timeout=CONNECT_TIMEOUT_S)
        conn.connect()  # raises OSError for a down engine within CONNECT_TIMEOUT_S
        assert conn.sock is not None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sock.settimeout(timeout)
        conn.timeout = timeout
        return conn, False

    def release(self, conn: http.client.HTTPConnection) -> None:
        """Keep a connection whose answer was read to the end for the next request."""
        with self._lock:
            if len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def path(self, request_path: str) -> str:
        """The engine's path for a path the client asked the proxy for."""
        return self.address.root + request_path

    def fetch(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """A small JSON request to the engine's root (for probing): (status, parsed JSON or None)."""
        kind = http.client.HTTPSConnection if self.address.scheme == "https" else http.client.HTTPConnection
        conn = kind(self.address.host, self.address.port, timeout=PROBE_TIMEOUT_S)
        try:
            data = None if body is None else json.dumps(body).encode("utf-8")
            headers = {"Accept": "application/json"} | ({"Content-Type": "application/json"} if data else {})
            conn.request(method, self.address.root + path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read(MAX_PROBE_BYTES + 1)
            return response.status, None if len(raw) > MAX_PROBE_BYTES else parse_json(raw)
        finally:
            conn.close()

    def refresh(self, force: bool = False) -> None:
        """Ask the engine again which models it serves (at most every REPROBE_AFTER_S unless `force`)."""
        if not force and time.monotonic() - self._probed_at < REPROBE_AFTER_S:
            return
        self._probed_at = time.monotonic()
        try:
            found = probe(self.fetch, self._hash_file)
        except OSError:
            return  # down now; its requests will get 502
        with self._lock:
            self.identities = found

    def identity(self, name: str | None, ask: bool = True) -> ModelIdentity | None:
        """The identity of the model `name` as this engine reports it; an unknown name makes the
        engine be asked again (at most every REPROBE_AFTER_S, and not when `ask` is False: an engine
        that is down), else it is recorded as reported, unverified."""
        if not name:
            return None
        if ask and name not in self.identities:
            self.refresh()
        return self.identities.get(name) or reported(name)


class UpstreamPool:
    """Several engines: a request naming a model one of them lists goes to those that list it, in
    turn; any other request goes to each engine in turn."""

    def __init__(self, urls: list[str], hash_file: Callable[[Path], str | None]) -> None:
        if not urls:
            raise StillroomError("give at least one --upstream URL (for example http://localhost:11434/v1)")
        self.upstreams = [Upstream(url, hash_file) for url in urls]
        seen = [u.url for u in self.upstreams]
        if len(set(seen)) != len(seen):
            raise StillroomError("the same upstream is given twice")
        self._turns: dict[str | None, Any] = {}
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Probe every engine once (at start)."""
        for upstream in self.upstreams:
            upstream.refresh(force=True)

    def pick(self, model: str | None) -> Upstream:
        """The engine for a request naming `model` (None: the request names none)."""
        if len(self.upstreams) == 1:
            return self.upstreams[0]
        serving = tuple(u for u in self.upstreams if model and model in u.identities)
        group = serving or tuple(self.upstreams)
        key = "|".join(u.url for u in group)
        with self._lock:
            turn = self._turns.setdefault(key, itertools.cycle(group))
            return next(turn)

    def close(self) -> None:
        """Close every engine's idle connections."""
        for upstream in self.upstreams:
            upstream.close()
