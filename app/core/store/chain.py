"""The hash chain over the generation log: canonical serialization, row hashes, value coercion.

A row's hash is sha256 over the canonical JSON of its CHAIN_COLUMNS (which include the row id and
the previous row's hash). Values are coerced to the exact types SQLite gives back, so that a row
read from the database hashes to what was computed when it was written.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from app.core.store.schema import CHAIN_COLUMNS, GENERATION_COLUMNS, JSON_COLUMNS


def dump_json(value: Any) -> str:
    """Stable JSON text for a JSON column (sorted keys, UTF-8, no NaN)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False, default=str)


def coerce(name: str, value: Any) -> Any:
    """Coerce `value` for column `name` to the Python type SQLite will return for it."""
    if value is None:
        return None
    kind = GENERATION_COLUMNS[name]
    if name in JSON_COLUMNS and not isinstance(value, str):
        return dump_json(value)
    if kind == "INTEGER":
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"column {name} needs a whole number, got {value!r}")
        return int(value)
    if kind == "REAL":
        number = float(value)
        return None if math.isnan(number) or math.isinf(number) else number
    return str(value)


def canonical_bytes(row: Mapping[str, Any], columns: Sequence[str] = CHAIN_COLUMNS) -> bytes:
    """The canonical serialization of a row's chained `columns` (the generation log's by default)."""
    payload = {name: row.get(name) for name in columns}
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def row_hash(row: Mapping[str, Any], columns: Sequence[str] = CHAIN_COLUMNS) -> str:
    """sha256 hex of the row's canonical serialization (prev_hash included); `columns` names the
    chained columns of another chained table (the event log's)."""
    return hashlib.sha256(canonical_bytes(row, columns)).hexdigest()
