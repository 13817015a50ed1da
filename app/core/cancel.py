"""A cancel token that long-running core generators check between chunks."""

from __future__ import annotations

import threading


class CancelToken:
    """Thread-safe flag: any thread may cancel; the generator checks `cancelled` between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the work to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once cancel() was called."""
        return self._event.is_set()


NEVER = CancelToken()
"""A token nobody cancels, for callers that do not need one."""
