"""A network guard: any connection attempt to a host that is not loopback is refused and recorded.

Put this folder on PYTHONPATH and Python imports it at start-up (site's `sitecustomize` hook), so a
subprocess is guarded from its first line. The test process installs the same guard with
`install()`. Each blocked attempt raises OSError and appends one line to the file named by
STILLROOM_NETGUARD_LOG (also to stderr), so an attempt made and swallowed inside a library (a
telemetry thread, a version check) is still seen by the test.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import traceback
from typing import Any

LOG_ENV = "STILLROOM_NETGUARD_LOG"
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}
_originals: dict[str, Any] = {}


class NetworkBlocked(OSError):
    """A connection to a non-loopback host was attempted."""


def is_loopback_host(host: Any) -> bool:
    """True for loopback addresses and names, for None (a local wildcard) and for Unix sockets."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _record(what: str, target: Any) -> None:
    stack = "".join(traceback.format_stack(limit=12)[:-2])
    line = f"BLOCKED {what} {target!r} in pid {os.getpid()}"
    sys.stderr.write(f"stillroom network guard: {line}\n")
    path = os.environ.get(LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n" + stack + "\n")


def _check_address(what: str, family: int, address: Any) -> None:
    if family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else address
    if not is_loopback_host(host):
        _record(what, address)
        raise NetworkBlocked(f"network access blocked by the test guard: {what} to {address!r}")


def install() -> None:
    """Patch socket.connect/connect_ex/sendto, create_connection, getaddrinfo and gethostbyname."""
    if _originals:
        return
    _originals.update(connect=socket.socket.connect, connect_ex=socket.socket.connect_ex,
                      sendto=socket.socket.sendto, create_connection=socket.create_connection,
                      getaddrinfo=socket.getaddrinfo, gethostbyname=socket.gethostbyname)

    def connect(self: socket.socket, address: Any) -> Any:
        _check_address("connect", self.family, address)
        return _originals["connect"](self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        _check_address("connect_ex", self.family, address)
        return _originals["connect_ex"](self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> Any:
        _check_address("sendto", self.family, args[-1])
        return _originals["sendto"](self, data, *args)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
        _check_address("create_connection", socket.AF_INET, address)
        return _originals["create_connection"](address, *args, **kwargs)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_loopback_host(host):
            _record("getaddrinfo", host)
            raise NetworkBlocked(f"name lookup blocked by the test guard: {host!r}")
        return _originals["getaddrinfo"](host, *args, **kwargs)

    def gethostbyname(host: Any) -> Any:
        if not is_loopback_host(host):
            _record("gethostbyname", host)
            raise NetworkBlocked(f"name lookup blocked by the test guard: {host!r}")
        return _originals["gethostbyname"](host)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = sendto  # type: ignore[method-assign]
    socket.create_connection = create_connection  # type: ignore[assignment]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    socket.gethostbyname = gethostbyname  # type: ignore[assignment]


def uninstall() -> None:
    """Put the original functions back."""
    if not _originals:
        return
    socket.socket.connect = _originals["connect"]  # type: ignore[method-assign]
    socket.socket.connect_ex = _originals["connect_ex"]  # type: ignore[method-assign]
    socket.socket.sendto = _originals["sendto"]  # type: ignore[method-assign]
    socket.create_connection = _originals["create_connection"]  # type: ignore[assignment]
    socket.getaddrinfo = _originals["getaddrinfo"]  # type: ignore[assignment]
    socket.gethostbyname = _originals["gethostbyname"]  # type: ignore[assignment]
    _originals.clear()


if os.environ.get(LOG_ENV):
    install()
