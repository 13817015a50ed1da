"""Typed reads of the generation log: filters, full-text search, single rows, conversations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from app.core.errors import NotFoundError
from app.core.store.schema import GENERATION_COLUMNS, GENERATIONS_TABLE, JSON_COLUMNS

FTS_TABLE = f"{GENERATIONS_TABLE}_fts"
_COLUMN_LIST = ", ".join(GENERATION_COLUMNS)


@dataclass(frozen=True)
class LogFilter:
    """What to select from the log; every field is optional and they combine with AND."""

    workflow: str | None = None
    source: str | None = None
    status: str | None = None
    model_sha256: str | None = None
    conversation_id: str | None = None
    search: str | None = None
    since: str | None = None  # ISO time, inclusive
    until: str | None = None  # ISO time, exclusive

    def where(self, db: Database) -> tuple[str, list[Any]]:
        """SQL WHERE clause (without the keyword; '1' when empty) and its parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        for column in ("workflow", "source", "status", "conversation_id"):
            value = getattr(self, column)
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.model_sha256:
            clauses.append("model_sha256 LIKE ?")
            params.append(self.model_sha256 + "%")
        if self.since:
            clauses.append("started_at >= ?")
            params.append(self.since)
        if self.until:
            clauses.append("started_at < ?")
            params.append(self.until)
        if self.search and self.search.strip():
            clauses.append(f"id IN (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ?)")
            params.append(db.quote_fts(self.search.strip()))
        return (" AND ".join(clauses) or "1"), params


def decode_row(names: list[str], values: tuple[Any, ...]) -> dict[str, Any]:
    """A generation row as a dict, with its JSON columns parsed."""
    row = dict(zip(names, values))
    for column in JSON_COLUMNS:
        if column in row and isinstance(row[column], str):
            try:
                row[column] = json.loads(row[column])
            except json.JSONDecodeError:
                pass  # shown as stored; verify reports the tampering, reads must not fail
    return row


def list_generations(db: Database, flt: LogFilter = LogFilter(), *, limit: int | None = 50,
                     offset: int = 0, newest_first: bool = True,
                     columns: tuple[str, ...] = tuple(GENERATION_COLUMNS)) -> list[dict[str, Any]]:
    """Rows matching `flt`, newest first by default."""
    where, params = flt.where(db)
    order = "DESC" if newest_first else "ASC"
    sql = f"SELECT {', '.join(columns)} FROM {GENERATIONS_TABLE} WHERE {where} ORDER BY id {order}"
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params = [*params, limit, offset]
    cursor = db.execute(sql, params)
    return [decode_row(list(columns), values) for values in cursor.fetchall()]


def iter_generations(db: Database, flt: LogFilter = LogFilter(), *, chunk: int = 1000) -> Iterator[dict[str, Any]]:
    """All rows matching `flt` in id order, fetched a chunk at a time."""
    where, params = flt.where(db)
    last = 0
    while True:
        cursor = db.execute(
            f"SELECT {_COLUMN_LIST} FROM {GENERATIONS_TABLE} WHERE {where} AND id > ? ORDER BY id LIMIT ?",
            [*params, last, chunk],
        )
        rows = cursor.fetchall()
        if not rows:
            return
        for values in rows:
            row = decode_row(list(GENERATION_COLUMNS), values)
            last = row["id"]
            yield row


def count_generations(db: Database, flt: LogFilter = LogFilter()) -> int:
    """How many rows match `flt`."""
    where, params = flt.where(db)
    return db.execute(f"SELECT count(*) FROM {GENERATIONS_TABLE} WHERE {where}", params).fetchone()[0]


def get_generation(db: Database, generation_id: int) -> dict[str, Any]:
    """One row by id; NotFoundError if there is none."""
    values = db.execute(f"SELECT {_COLUMN_LIST} FROM {GENERATIONS_TABLE} WHERE id = ?",
                        [generation_id]).fetchone()
    if values is None:
        raise NotFoundError(f"no generation with id {generation_id}")
    return decode_row(list(GENERATION_COLUMNS), values)


def distinct_values(db: Database, column: str) -> list[str]:
    """Distinct non-empty values of a filterable column (workflow, source, status, model)."""
    if column not in ("workflow", "source", "status", "model_sha256", "model_name"):
        raise ValueError(f"cannot list values of column {column}")
    cursor = db.execute(
        f"SELECT DISTINCT {column} FROM {GENERATIONS_TABLE} WHERE {column} IS NOT NULL ORDER BY {column}"
    )
    return [value for (value,) in cursor.fetchall()]


def generation_position(db: Database, flt: LogFilter, generation_id: int, *, newest_first: bool = True) -> int:
    """How many rows matching `flt` come before `generation_id` in list order (its row index)."""
    where, params = flt.where(db)
    before = ">" if newest_first else "<"
    return db.execute(f"SELECT count(*) FROM {GENERATIONS_TABLE} WHERE {where} AND id {before} ?",
                      [*params, generation_id]).fetchone()[0]
