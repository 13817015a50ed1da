"""The local server's HTTP listener: http.server's threading server with a cap on how many
connections it serves at once (a thread each), so stalled or abusive clients cannot make it start
threads without end; one connection over the cap gets a 503 at once from the accepting thread.
One address may hold at most MAX_CONNECTIONS_PER_ADDRESS of them (one more gets 429), so a single
client cannot take every slot; and DeadlineReader gives each request a deadline for its headers and
one for its body that trickling a byte at a time does not move, so a slow client frees its slot.
"""

from __future__ import annotations

import io
import json
import logging
import math
import socket
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any

LOG = logging.getLogger(__name__)
MAX_CONNECTIONS = 64  # connections served at once (a thread each); one more gets 503 at once
MAX_CONNECTIONS_PER_ADDRESS = 48  # of those, from one client address; one more gets 429 at once


class Slots:
    """How many connections are being served, in all and per client address, against limits
    (which may change while serving)."""

    def __init__(self, limit: int, per_address: int = MAX_CONNECTIONS_PER_ADDRESS) -> None:
        self.limit = limit
        self.per_address = per_address
        self.in_use = 0
        self.by_address: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, address: str = "") -> str | None:
        """Take a slot for a connection from `address`; None when taken, else why not ("server"
        when every slot is in use, "address" when that address holds its share)."""
        with self._lock:
            if self.in_use >= self.limit:
                return "server"
            if self.by_address.get(address, 0) >= self.per_address:
                return "address"
            self.in_use += 1
            self.by_address[address] = self.by_address.get(address, 0) + 1
            return None

    def give_back(self, address: str = "") -> None:
        """Free a slot taken before for `address`."""
        with self._lock:
            self.in_use -= 1
            left = self.by_address.get(address, 1) - 1
            if left > 0:
                self.by_address[address] = left
            else:
                self.by_address.pop(address, None)


class DeadlineReader(io.RawIOBase):
    """A socket's receiving side with a deadline: each receive waits at most `idle_s` (read when it
    is called) and never past `deadline` (time.monotonic()); past either it raises TimeoutError.
    The socket's own timeout is put back to `idle_s` after each receive, for the writes that follow."""

    def __init__(self, sock: socket.socket, idle_s: Any) -> None:
        super().__init__()
        self._sock = sock
        self._idle_s = idle_s  # a callable returning seconds
        self.deadline = math.inf

    def readable(self) -> bool:  # noqa: D102 - io protocol
        return True

    def readinto(self, buffer: Any) -> int:  # noqa: D102 - io protocol
        idle = self._idle_s()
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the read deadline passed")
        self._sock.settimeout(min(idle, remaining) if idle is not None else remaining)
        try:
            return self._sock.recv_into(buffer)
        finally:
            self._sock.settimeout(idle)


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
        address = str(client_address[0])
        refused = self.slots.take(address)
        if refused is not None:
            if refused == "server":
                refuse_busy(request, 503, f"the server is already serving {self.slots.limit} connections")
            else:
                refuse_busy(request, 429, f"your address already holds {self.slots.per_address} connections "
                                          "to this server")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.give_back(address)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:  # noqa: D102
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.give_back(str(client_address[0]))

    def handle_error(self, request: Any, client_address: Any) -> None:
        """socketserver prints a traceback to stderr for anything a handler raised: a client that hung up
        before reading its answer is routine (quiet), anything else goes to the log, not the terminal."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            LOG.debug("client %s went away: %s", client_address[0], error)
        else:
            LOG.error("request from %s failed", client_address[0], exc_info=True)


def refuse_busy(request: socket.socket, status: int, reason: str) -> None:
    """Write an OpenAI-style 503 (429) on a connection the server will not serve (best effort)."""
    body = json.dumps({"error": {"message": f"{reason}; try again shortly", "type": "server_busy", "param": None,
                                 "code": "too_many_connections"}}).encode("utf-8")
    phrase = "Service Unavailable" if status == 503 else "Too Many Requests"
    head = (f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n").encode("ascii")
    try:
        request.settimeout(1.0)
        request.sendall(head + body)
    except OSError:
        pass  # the client is gone or not reading: nothing more to do for it
