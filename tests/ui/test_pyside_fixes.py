"""The guard against PySide6 6.12.0's lost references to None/True/False on Python 3.11."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal

from app.workers import pyside_fixes

CALLS = 50_000


class _Emitter(QObject):
    ping = Signal(str)


def test_many_qt_calls_cannot_free_none_or_the_bools() -> None:
    assert pyside_fixes.install() == pyside_fixes._installed
    low_water = min(sys.getrefcount(None), sys.getrefcount(True))
    emitter = _Emitter()
    for _ in range(CALLS):
        emitter.setObjectName("x")
        emitter.ping.emit("x")
    if pyside_fixes._installed:  # this PySide6 loses references: the reserve covers them
        assert min(sys.getrefcount(None), sys.getrefcount(True)) > pyside_fixes.RESERVE // 2
    else:
        assert min(sys.getrefcount(None), sys.getrefcount(True)) >= low_water - 100
