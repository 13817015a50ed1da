"""Forwarding one request to an engine and its answer back to the client, unchanged: the status and
the engine's headers (less the hop-by-hop ones), and the body's bytes as they arrive, each block
written on at once. A copy of the body (bounded) is kept for the ledger row. An answer with a length
goes on with that length; one without (a stream) goes on in chunked encoding, so that a stream the
engine breaks off reaches the client as broken (no final chunk), not as a shorter whole."""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

from app.core.proxy.upstreams import Upstream

BLOCK = 64 * 1024
MAX_CAPTURE_BYTES = 4 * 1024 * 1024  # of an answer, kept for the row (64 connections: 256 MiB at most); the client gets all
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "content-length", "server", "date"})
FORWARDED_REQUEST_HEADERS = ("Content-Type", "Accept", "User-Agent", "OpenAI-Beta", "OpenAI-Organization",
                             "OpenAI-Project", "anthropic-version", "anthropic-beta", "Idempotency-Key")


STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class UpstreamDown(Exception):
    """The engine could not be reached, or broke off before its answer began."""


class ClientGone(Exception):
    """The client stopped reading while the answer was being passed on."""


@dataclass
class Relayed:
    """What passed through: the engine's status and content type, the body as far as it was kept,
    when the first and last bytes came, and whether the answer was cut short (and why)."""

    status: int
    content_type: str | None
    body: bytearray = field(default_factory=bytearray)
    truncated: bool = False
    first_byte_at: float | None = None
    ended_at: float = 0.0
    broken: str | None = None  # the engine broke off mid-answer
    client_gone: bool = False
    size: int = 0


def open_exchange(upstream: Upstream, method: str, path: str, body: bytes | None,
                  headers: dict[str, str]) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """Send the request and wait for the engine's status and headers. A kept-alive connection that
    turns out closed is replaced once. Raises UpstreamDown for an engine that cannot be reached or
    does not answer."""
    for attempt in (0, 1):
        try:
            conn, reused = upstream.connect()
        except OSError as exc:
            raise UpstreamDown(f"cannot connect to the upstream {upstream.url}: {exc.strerror or exc}") from exc
        try:
            conn.request(method, upstream.path(path), body=body, headers=headers)
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            if reused and attempt == 0 and isinstance(exc, STALE):
                continue  # the engine had closed the kept-alive connection before reading the request
            raise UpstreamDown(f"the upstream {upstream.url} did not answer: {exc or type(exc).__name__}") from exc
    raise AssertionError("unreachable")


def relay(upstream: Upstream, conn: http.client.HTTPConnection, response: http.client.HTTPResponse,
          client: Any, finish: Callable[[Relayed], None]) -> Relayed:
    """Pass the engine's answer on to `client` (a BaseHTTPRequestHandler) as it arrives and return
    what passed. `finish(relayed)` (which logs the row) is called once: for an answer that ended
    cleanly, just before its end goes out (the final chunk, or the last block of an answer with a
    length), so a client never holds a whole answer that is not in the ledger; otherwise after.
    The connection goes back to the upstream's pool when the answer ended cleanly; the client's
    connection is closed (client.close_connection) when it cannot be reused."""
    relayed = Relayed(response.status, response.getheader("Content-Type"))
    length = response.getheader("Content-Length")
    chunked = length is None or response.chunked
    expected = None if chunked else int(length or 0)
    client.send_response(response.status, response.reason)
    for name, value in response.getheaders():
        if name.lower() not in HOP_BY_HOP:
            client.send_header(name, value)
    client.send_header(*(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(expected))))
    client.end_headers()
    out = client.wfile
    held = b""  # the end of the answer, sent after finish()
    while expected != 0:
        try:
            block = response.read1(BLOCK)
        except (OSError, http.client.HTTPException) as exc:
            relayed.broken = f"the upstream {upstream.url} broke off its answer: {exc or type(exc).__name__}"
            break
        now = time.monotonic()
        if not block:
            break
        if relayed.first_byte_at is None:
            relayed.first_byte_at = now
        relayed.size += len(block)
        if len(relayed.body) + len(block) <= MAX_CAPTURE_BYTES:
            relayed.body += block
        else:
            relayed.truncated = True
        if expected is not None and relayed.size >= expected:
            held = block
            break
        if not _send(out, b"%x\r\n%b\r\n" % (len(block), block) if chunked else block):
            relayed.client_gone = True
            break
    relayed.ended_at = time.monotonic()
    if relayed.broken is None and not relayed.client_gone and expected is not None and relayed.size < expected:
        relayed.broken = f"the upstream {upstream.url} closed the connection {relayed.size} of {expected} bytes in"
    clean = relayed.broken is None and not relayed.client_gone
    if clean and not response.will_close:
        response.close()  # read to the end: the connection may carry the next request
        upstream.release(conn)
    else:
        conn.close()
    if not clean:
        client.close_connection = True
        finish(relayed)
        return relayed
    finish(relayed)
    if not _send(out, b"0\r\n\r\n" if chunked else held):
        relayed.client_gone = True
        client.close_connection = True
    return relayed


def _send(out: Any, data: bytes) -> bool:
    """Write and flush to the client; False when the client has gone."""
    try:
        out.write(data)
        out.flush()
        return True
    except OSError:
        return False
