"""The compact list of the generations a statement traces: their ids as ranges ("1-3,7,9-10"), a
digest over every "id:row_hash", and a short prefix of each row hash (which locates a changed row).
Written by statement.py, read back by verify.py; every reader bounds what a hostile list can make it
expand."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence

HASH_PREFIX_BYTES = 6
MAX_ID_DIGITS = 19  # a SQLite rowid fits in 64 bits


def encode_ids(ids: Iterable[int]) -> str:
    """Sorted ids as ranges: [1, 2, 3, 7, 9, 10] -> "1-3,7,9-10"."""
    parts: list[str] = []
    start = prev = None
    for value in sorted(set(ids)):
        if start is None:
            start = prev = value
        elif value == prev + 1:  # type: ignore[operator]
            prev = value
        else:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = prev = value
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(parts)


def _ranges(text: str) -> Iterable[tuple[int, int]]:
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        if len(low) > MAX_ID_DIGITS or len(high) > MAX_ID_DIGITS:
            raise ValueError(f"bad id range {part[:40]!r}")
        first, last = int(low), int(high) if high else int(low)
        if first < 1 or last < first:
            raise ValueError(f"bad id range {part[:40]!r}")
        yield first, last


def count_ids(text: str) -> tuple[int, int]:
    """(how many ids, the highest id) an encoded list names, without expanding it; ValueError when
    malformed."""
    count = highest = 0
    for first, last in _ranges(text):
        count += last - first + 1
        highest = max(highest, last)
    return count, highest


def decode_ids(text: str, limit: int | None = None) -> list[int]:
    """The inverse of encode_ids; ValueError on a malformed list, or (with `limit`) one naming more
    than `limit` ids, found before any range is expanded."""
    if limit is not None:
        count, _ = count_ids(text)
        if count > limit:
            raise ValueError(f"the list names {count} ids, more than the {limit} allowed")
    ids: list[int] = []
    for first, last in _ranges(text):
        ids.extend(range(first, last + 1))
    return ids


def traced_digest(pairs: Iterable[tuple[int, str]]) -> str:
    """sha256 over "id:row_hash" lines in id order: one value that covers every traced row."""
    digest = hashlib.sha256()
    for gid, rhash in sorted(pairs):
        digest.update(f"{gid}:{rhash}\n".encode("ascii"))
    return digest.hexdigest()


def hash_prefixes(hashes: Sequence[str]) -> str:
    """The first HASH_PREFIX_BYTES of each row hash, concatenated, in base64 (locates a changed row;
    the digest is what covers the rows in full)."""
    raw = b"".join(bytes.fromhex(h[: HASH_PREFIX_BYTES * 2].ljust(HASH_PREFIX_BYTES * 2, "0")) for h in hashes)
    return base64.b64encode(raw).decode("ascii")


def split_prefixes(text: str) -> list[str]:
    """The inverse of hash_prefixes: one hex prefix per traced row."""
    raw = base64.b64decode(text, validate=True)
    return [raw[i:i + HASH_PREFIX_BYTES].hex() for i in range(0, len(raw), HASH_PREFIX_BYTES)]
