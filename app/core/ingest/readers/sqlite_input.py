"""Reading an SQLite file that came from elsewhere (simonw/llm's logs.db) without trusting it.

A crafted database is small on disk but can make SQLite compute without end or produce gigabytes: a
view over a recursive query that never ends, or one that makes huge strings. So the connection is

- read-only (URI ``mode=ro``; the file may be in use by llm, so not ``immutable``), with
  ``query_only`` and ``trusted_schema`` off (views cannot call functions with side effects);
- limited to values of at most MAX_VALUE_BYTES (SQLITE_LIMIT_LENGTH: a bigger string fails);
- watched by a progress handler that interrupts a statement when the reader is cancelled or when
  SQLite has worked for STEP_BUDGET_S without handing over the next row (Guard.reason says which);

and a table that is really a view is read at most MAX_VIEW_ROWS rows / MAX_VIEW_BYTES bytes.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from app.core.cancel import NEVER, CancelToken

MAX_VALUE_BYTES = 64 << 20  # one string or blob; as containers.MAX_RECORD_BYTES for a line
STEP_BUDGET_S = 10.0  # the longest SQLite may work between two rows (or on one statement)
PROGRESS_OPCODES = 20_000  # how often (in SQLite VM instructions) the handler looks at the clock
MAX_VIEW_ROWS = 10_000
MAX_VIEW_BYTES = 64 << 20


class Guard:
    """The progress handler of one connection: interrupts when cancelled or over the time budget.

    Call `step()` whenever a row has been handed over (the budget starts again); `reason` names why a
    statement was interrupted (None when it was not)."""

    def __init__(self, cancel: CancelToken = NEVER, budget_s: float | None = None) -> None:
        self.cancel = cancel
        self.budget_s = STEP_BUDGET_S if budget_s is None else budget_s
        self.reason: str | None = None
        self._since = time.monotonic()

    def step(self) -> None:
        """A row arrived: the next one has the whole budget again."""
        self._since = time.monotonic()

    def __call__(self) -> int:
        if self.cancel.cancelled:
            self.reason = "cancelled"
            return 1
        if time.monotonic() - self._since > self.budget_s:
            self.reason = (f"SQLite worked for more than {self.budget_s:g} s without giving the next row "
                           "(a view that never ends?); stopped")
            return 1
        return 0


def connect_guarded(path: Path, guard: Guard | None = None) -> sqlite3.Connection:
    """A read-only connection to `path` with the limits above; sqlite3.Error when it cannot be opened."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.set_progress_handler(guard or Guard(), PROGRESS_OPCODES)
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def is_view(conn: sqlite3.Connection, name: str) -> bool:
    """True when `name` is a view rather than a table."""
    row = conn.execute("SELECT type FROM sqlite_master WHERE name = ? COLLATE NOCASE "
                       "AND type IN ('table', 'view')", [name]).fetchone()
    return bool(row) and row[0] == "view"


def row_bytes(values: tuple | list) -> int:
    """Roughly how many bytes a row holds (its text and blobs; 8 for anything else)."""
    return sum(len(v) if isinstance(v, (str, bytes)) else 8 for v in values)


__all__ = ["Guard", "MAX_VALUE_BYTES", "MAX_VIEW_BYTES", "MAX_VIEW_ROWS", "STEP_BUDGET_S", "connect_guarded",
           "is_view", "row_bytes"]
