"""A guard against a reference-count bug of PySide6 6.12.0 on Python 3.11.

There, every call of a Qt method that returns nothing (setText, start, ...) gives back None without
taking a reference to it, and SignalInstance.emit does the same with True; each call takes one
reference away from the singleton. A window that streams tokens makes thousands of such calls a
minute, and once the count reaches zero the interpreter aborts ("Fatal Python error:
none_dealloc"). Python 3.12 made None, True and False immortal, so the bug is harmless there.

install() measures whether this PySide6 loses references and, only then, gives the three
singletons a reserve of references large enough never to run out (what 3.12's immortality does).
PySide6 6.11.2 does not have the bug.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

PROBES = 8
RESERVE = 1 << 40
_installed = False


class _Probe(QObject):
    ping = Signal()


def loses_references() -> bool:
    """Whether void calls or emit() take references from None/True/False (measured)."""
    probe = _Probe()
    before = sys.getrefcount(None) + sys.getrefcount(True) + sys.getrefcount(False)
    for _ in range(PROBES):
        probe.setObjectName("probe")
        probe.ping.emit()
    after = sys.getrefcount(None) + sys.getrefcount(True) + sys.getrefcount(False)
    return before - after >= PROBES


def install() -> bool:
    """Apply the guard where it is needed (idempotent); returns whether it is in place."""
    global _installed
    if _installed:
        return True
    if sys.version_info >= (3, 12) or not loses_references():
        return False
    for singleton in (None, True, False):
        # ob_refcnt is the first field of every object; the GIL is held, so no other thread races it.
        ctypes.c_ssize_t.from_address(id(singleton)).value += RESERVE
    _installed = True
    return True
