"""The local server's HTTP listener: http.server's threading server with a cap on how many
connections it serves at once (a thread each), so stalled or abusive clients cannot make it start
threads without end; one connection over the cap gets a 503 at once from the accepting thread."""

from __future__ import annotations

import json
import socket
import threading
from http.server import ThreadingHTTPServer
from typing import Any

MAX_CONNECTIONS = 64  # connections served at once (a thread each); one more gets 503 at once


class Slots:
    """How many connections are being served, against a limit (which may change while serving)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Take a slot if one is free."""
        with self._lock:
            if self.in_use >= self.limit:
                return False
            self.in_use += 1
            return True

    def give_back(self) -> None:
        """Free a slot taken before."""
        with self._lock:
            self.in_use -= 1


class LimitedHTTPServer(ThreadingHTTPServer):
    """A thread per connection, up to `slots.limit`; `app` is the StillroomServer the handlers serve."""

    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, app: Any) -> None:
        self.app = app
        self.slots = Slots(MAX_CONNECTIONS)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:  # noqa: D102 - socketserver hook
        if not self.slots.take():
            refuse_busy(request, self.slots.limit)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.give_back()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:  # noqa: D102
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.give_back()


def refuse_busy(request: socket.socket, limit: int) -> None:
    """Write an OpenAI-style 503 on a connection the server will not serve (best effort)."""
    body = json.dumps({"error": {"message": f"the server is already serving {limit} connections; "
                                            "try again shortly", "type": "server_busy", "param": None,
                                 "code": "too_many_connections"}}).encode("utf-8")
    head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n").encode("ascii")
    try:
        request.settimeout(1.0)
        request.sendall(head + body)
    except OSError:
        pass  # the client is gone or not reading: nothing more to do for it
