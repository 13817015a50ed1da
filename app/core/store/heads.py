"""The record of chain heads: every head that was shown or signed, kept outside the ledger database.

A ledger's hash chain alone cannot tell a rewritten ledger from an honest one: whoever can write the
file can change a row and recompute every hash after it. What they cannot change is a head that was
already written down somewhere else. This module keeps such a record beside the ledger
(`ledger.heads.jsonl` for `ledger.db`): one JSON line per event, each line carrying the hash of the
line before it, appended (never rewritten) when a ledger is created and whenever a chain head is
printed (`log verify`, doctor, the Ledger view) or put in a statement.

`check_heads` then tells whether the ledger still holds every remembered head: a row rewritten and
the chain recomputed, rows deleted from the end with the head moved back, or every row deleted all
leave a remembered head missing or changed. `existed_before` lets `open_db` refuse to silently
re-create a ledger that was deleted or emptied.

What it does not defend against: someone who rewrites the ledger *and* this record, or deletes
both. Only a head published elsewhere (in a statement someone kept) catches that.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app.core.store.schema import GENESIS_HASH

RECORD_SUFFIX = ".heads.jsonl"
RECORD_FILE_MODE = 0o600
MAX_RECORD_BYTES = 64 * 1024 * 1024
SHOWN_PROBLEMS = 3

try:  # POSIX: serialize appends from several processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def record_path(ledger_path: Path | str) -> Path:
    """The record of heads that belongs to the ledger at `ledger_path` (`ledger.db` -> `ledger.heads.jsonl`)."""
    path = Path(ledger_path)
    return path.with_name(path.stem + RECORD_SUFFIX)


@dataclass(frozen=True)
class Head:
    """One remembered head: the row id and hash, how many rows, when and why it was written down."""

    seq: int
    event: str
    why: str
    head_id: int
    head_hash: str
    at: str


@dataclass
class HeadRecord:
    """A record read back: its entries and what is wrong with the record itself (edited lines)."""

    path: Path
    heads: list[Head] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    last_hash: str = GENESIS_HASH

    @property
    def entries(self) -> int:
        """How many events the record holds."""
        return len(self.heads)


def _line_hash(entry: dict[str, Any]) -> str:
    body = {key: value for key, value in entry.items() if key != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def read_record(ledger_path: Path | str) -> HeadRecord:
    """The record of heads of a ledger (empty when there is none). A line that was edited, removed or
    inserted breaks the record's own chain and is listed in `problems`."""
    path = record_path(ledger_path)
    record = HeadRecord(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return record
    except OSError as exc:
        record.problems.append(f"{path.name}: cannot read the record of chain heads ({exc.strerror or exc})")
        return record
    if size > MAX_RECORD_BYTES:
        record.problems.append(f"{path.name}: the record of chain heads is {size} bytes, more than the "
                               f"{MAX_RECORD_BYTES} a real one reaches; it was not written by Stillroom")
        return record
    prev = GENESIS_HASH
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                entry = json.loads(raw.decode("utf-8"))
                if not isinstance(entry, dict):
                    raise ValueError("not an object")
                head = Head(int(entry["seq"]), str(entry["event"]), str(entry.get("why", "")),
                            int(entry["head_id"]), str(entry["head_hash"]), str(entry.get("at", "")))
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                record.problems.append(f"{path.name} line {number} is not a record of a chain head: "
                                       "the record was edited")
                return record
            if entry.get("prev") != prev or _line_hash(entry) != entry.get("hash") or head.seq != number:
                record.problems.append(f"{path.name} line {number} was edited, inserted or reordered "
                                       "(it no longer links to the line before it)")
                return record
            prev = record.last_hash = str(entry["hash"])
            record.heads.append(head)
    return record


def existed_before(ledger_path: Path | str) -> HeadRecord | None:
    """The record when it shows that a ledger existed at `ledger_path` (at least one entry), else None."""
    record = read_record(ledger_path)
    return record if record.heads or record.problems else None


@contextlib.contextmanager
def _locked_append(path: Path) -> Iterator[Any]:
    fd = os.open(path, os.O_CREAT | os.O_APPEND | os.O_RDWR, RECORD_FILE_MODE)
    with os.fdopen(fd, "a+b") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def remember(ledger_path: Path | str, head_id: int | None, head_hash: str | None, *, event: str = "head",
             why: str = "") -> None:
    """Append a head to the record (skipped when it is the head the record ends with). `event`:
    "created" for a new ledger, "head" for a head that was shown or signed; `why` says where.
    Raises LedgerError naming the file when the record cannot be written."""
    path = record_path(ledger_path)
    try:
        _append(path, ledger_path, head_id, head_hash, event, why)
    except OSError as exc:
        from app.core.errors import LedgerError

        raise LedgerError(f"{path}: cannot remember the chain head ({exc.strerror or exc})") from exc


def _append(path: Path, ledger_path: Path | str, head_id: int | None, head_hash: str | None, event: str,
            why: str) -> None:
    head_id, head_hash = int(head_id or 0), head_hash or GENESIS_HASH
    with _locked_append(path) as handle:
        record = read_record(ledger_path)
        if record.problems:
            return  # never extend a record that was tampered with; check_heads reports it
        last = record.heads[-1] if record.heads else None
        if last is not None and event == "head" and (last.head_id, last.head_hash) == (head_id, head_hash):
            return
        entry: dict[str, Any] = {
            "seq": record.entries + 1, "event": event, "why": why, "ledger": Path(ledger_path).name,
            "head_id": head_id, "head_hash": head_hash,
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "prev": record.last_hash,
        }
        entry["hash"] = _line_hash(entry)
        handle.write((json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


@dataclass(frozen=True)
class HeadProblem:
    """A disagreement between the ledger and its record: the row it concerns (None for the record
    itself) and a sentence."""

    row: int | None
    text: str


def check_heads(conn: Any, ledger_path: Path | str) -> list[HeadProblem]:
    """What is wrong between the ledger (an open sqlite3 connection) and its record of heads: the
    record edited, or a remembered head no longer in the chain (missing, or a different row). Empty
    when every remembered head is still there unchanged."""
    record = read_record(ledger_path)
    problems = [HeadProblem(None, text) for text in record.problems]
    seen: set[tuple[int, str]] = set()
    count = conn.execute("SELECT count(*) FROM generations").fetchone()[0]
    top = conn.execute("SELECT max(id) FROM generations").fetchone()[0] or 0
    for head in record.heads:
        if head.head_id <= 0 or (head.head_id, head.head_hash) in seen:
            continue
        seen.add((head.head_id, head.head_hash))
        found = conn.execute("SELECT row_hash FROM generations WHERE id = ?", (head.head_id,)).fetchone()
        where = f"(remembered {head.at}{', ' + head.why if head.why else ''})"
        if found is None and count == 0:
            problems.append(HeadProblem(1, f"every row was deleted: the ledger is empty, but it held row "
                                           f"{head.head_id} {where}"))
        elif found is None and top < head.head_id:
            problems.append(HeadProblem(top + 1, f"rows were deleted from the end: the ledger ends at row {top}, "
                                                 f"but it held row {head.head_id} {where}"))
        elif found is None:
            problems.append(HeadProblem(head.head_id, f"row {head.head_id}, a chain head {where}, is missing"))
        elif found[0] != head.head_hash:
            problems.append(HeadProblem(head.head_id, f"the ledger was rewritten: row {head.head_id} is not the "
                                                      f"chain head {where} (hash {head.head_hash[:16]}…, now "
                                                      f"{str(found[0])[:16]}…)"))
        if len(problems) > SHOWN_PROBLEMS:
            break
    return problems
