"""Export generations selected on the audit map as JSONL or CSV (Qt-free; runs on the database thread)."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from app.core.outfiles import replace_file
from app.core.store.queries import get_generation

FORMATS = (".jsonl", ".csv")
FIELDS = ("id", "started_at", "workflow", "source", "model_name", "model_sha256", "top_pattern", "top_score",
          "level", "system_prompt", "prompt", "response", "status")
LOOKUP_CHUNK = 500


def selection_rows(db: Database, generation_ids: Sequence[int],
                   audit: Mapping[int, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One flat record per generation (FIELDS), with the map's audit columns from `audit` by id."""
    rows = []
    for generation_id in generation_ids:
        row = get_generation(db, int(generation_id))
        extra = (audit or {}).get(int(generation_id), {})
        record = {name: row.get(name) for name in FIELDS}
        record.update({name: extra.get(name) for name in ("top_pattern", "top_score", "level")})
        rows.append(record)
    return rows


def export_selection(db: Database, generation_ids: Sequence[int], path: Path,
                     audit: Mapping[int, Mapping[str, Any]] | None = None) -> int:
    """Write the selected generations to `path` (.jsonl or .csv by suffix, created 0600, replaced
    atomically); returns the row count."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"cannot export a selection as {suffix or 'a file without a suffix'}; use .jsonl or .csv")
    rows = selection_rows(db, generation_ids, audit)
    with replace_file(path, newline="") as handle:  # owner-only: it holds prompts and responses
        if suffix == ".jsonl":
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            writer = csv.DictWriter(handle, fieldnames=list(FIELDS))
            writer.writeheader()
            writer.writerows(rows)
    return len(rows)
