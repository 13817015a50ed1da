"""A tiny OpenAI-shaped HTTP responder that answers from memory with fixed bytes: the upstream for
checking that the proxy passes bytes on unchanged, and for measuring the proxy's own ceiling (no
engine answers as fast). It is a real HTTP server on 127.0.0.1 (keep-alive, chunked streams)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_BODY = json.dumps({
    "id": "chatcmpl-fixed", "object": "chat.completion", "created": 1, "model": "memory-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Fixed answer \u00e9\u00e8 \u2603"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
}, separators=(",", ":")).encode("utf-8") + b"  \n"  # odd trailing bytes: passed on or not
STREAM_CHUNKS = [
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"memory-model","choices":'
    b'[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}\n\n',
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"memory-model","choices":'
    b'[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}\n\n',
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"memory-model","choices":'
    b'[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
    b"data: [DONE]\n\n",
]
MODELS_BODY = json.dumps({"object": "list", "data": [{"id": "memory-model", "object": "model"}]}).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # noqa: N802
        routes = self.server.routes  # type: ignore[attr-defined]
        if ("GET", self.path) in routes:
            self._send(200, routes[("GET", self.path)])
        elif self.path.rstrip("/") == "/v1/models":
            self._send(200, MODELS_BODY)
        else:
            self._send(404, b'{"error":{"message":"not here"}}')

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.seen.append(dict(self.headers))  # type: ignore[attr-defined]
        if ("POST", self.path) in self.server.routes:  # type: ignore[attr-defined]
            self._send(200, self.server.routes[("POST", self.path)])  # type: ignore[attr-defined]
            return
        if not body.get("stream"):
            self._send(200, CHAT_BODY)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in STREAM_CHUNKS:
            self.wfile.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _send(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def memory_responder(routes: dict[tuple[str, str], bytes] | None = None) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """Yields (base URL …/v1, the headers of every POST it received). `routes` adds fixed JSON
    answers by (method, path), such as an engine's documented identity endpoints."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    server.routes = routes or {}  # type: ignore[attr-defined]
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", server.seen  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
