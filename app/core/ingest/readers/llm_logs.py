"""simonw/llm's logs.db: the `responses` table (and `conversations` for names), read-only.

Columns used where present (llm adds them over its migrations): id, model, resolved_model, prompt,
system, prompt_json, options_json, response, response_json, conversation_id, duration_ms,
datetime_utc, input_tokens, output_tokens. Rows are read in insertion (rowid) order; a record's
position is its 1-based place in that order, and it is de-duplicated by llm's own response id.
The file is read through sqlite_input's guarded connection (read-only, bounded in time and size;
a `responses` view is read at most MAX_VIEW_ROWS rows).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.core.ingest.containers import Issue, RawRecord, Source, parse_json_text
from app.core.ingest.errors import ImportFormatError, RecordError
from app.core.ingest.readers.sqlite_input import MAX_VIEW_BYTES, MAX_VIEW_ROWS, Guard, connect_guarded, is_view, row_bytes
from app.core.ingest.records import (
    ImportedRecord,
    ReadOptions,
    chat_messages,
    iso_time,
    json_safe,
    kind_of,
    need_dict,
    opt_float,
    opt_int,
    opt_str,
    split_chat,
)

RESPONSE_COLUMNS = (
    "id", "model", "resolved_model", "prompt", "system", "prompt_json", "options_json", "response",
    "response_json", "conversation_id", "duration_ms", "datetime_utc", "input_tokens", "output_tokens",
)
REQUIRED_COLUMNS = ("id", "model", "prompt", "response")
LLM_ID_KEY = "llm_id"


def connect_readonly(path: Path, guard: Guard | None = None) -> sqlite3.Connection:
    """A read-only, guarded connection to an SQLite file (see sqlite_input); ImportFormatError when
    it cannot be opened."""
    try:
        conn = connect_guarded(path, guard)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise ImportFormatError(f"{path}: the SQLite database cannot be read ({exc})") from exc
    return conn


def table_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """The column names of `table` ([] when there is no such table)."""
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})").fetchall()]


def check_llm_logs(path: Path) -> None:
    """Raise ImportFormatError unless `path` is an llm logs.db (a `responses` table with its columns)."""
    conn = connect_readonly(path)
    try:
        columns = table_columns(conn, "responses")
    except sqlite3.Error as exc:
        raise ImportFormatError(f"{path}: the SQLite database cannot be read ({exc})") from exc
    finally:
        conn.close()
    if not columns:
        raise ImportFormatError(f"{path}: an SQLite database, but not simonw/llm's logs.db "
                                "(it has no `responses` table)")
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise ImportFormatError(f"{path}: its `responses` table lacks llm's columns {', '.join(missing)}")


class LlmLogsSource(Source):
    """The rows of `responses` as {column: value} dicts, with `conversation_name` joined in."""

    unit = "row"
    progress_unit = "rows"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done = 0
        self.total = None

    def __iter__(self) -> Iterator[RawRecord | Issue]:
        guard = Guard(self.cancel)
        conn = connect_readonly(self.path, guard)
        position = 0
        size = 0
        try:
            present = set(table_columns(conn, "responses"))
            names = [name for name in RESPONSE_COLUMNS if name in present]
            select = ", ".join(f"r.{name}" for name in names)
            join = ""
            if {"id", "name"} <= set(table_columns(conn, "conversations")) and "conversation_id" in present:
                select += ", c.name"
                names.append("conversation_name")
                join = "LEFT JOIN conversations c ON c.id = r.conversation_id"
            view = is_view(conn, "responses")
            # a view is computed, not stored: counting it may never end, and it has no rowid
            self.total = None if view else conn.execute("SELECT count(*) FROM responses").fetchone()[0]
            order = "" if view else "ORDER BY r.rowid"
            cursor = conn.execute(f"SELECT {select} FROM responses r {join} {order}")
            guard.step()
            for values in cursor:
                size += row_bytes(values)
                if view and (position >= MAX_VIEW_ROWS or size > MAX_VIEW_BYTES):
                    yield Issue(position + 1, self.unit, f"`responses` is a view, not llm's table, and gives more than "
                                f"{MAX_VIEW_ROWS} rows or {MAX_VIEW_BYTES >> 20} MiB; the rest was not read")
                    return
                position += 1
                self.done = position
                yield RawRecord(position, dict(zip(names, values)))
                guard.step()  # the time the consumer took is not SQLite's
        except sqlite3.Error as exc:
            reason = guard.reason or f"the database cannot be read from here on ({exc})"
            yield Issue(position + 1, self.unit, reason)
        finally:
            conn.close()


def _json_column(value: Any, name: str) -> Any:
    """A JSON TEXT column parsed (None stays None)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"{name} should be JSON text, got {kind_of(value)}")
    if not value.strip():
        return None
    try:
        return parse_json_text(value)
    except ValueError as exc:
        raise RecordError(f"{name}: {exc}") from exc


def read_llm_row(value: Any, options: ReadOptions) -> list[ImportedRecord]:
    """One `responses` row: the prompt (with prompt_json's messages when it holds them), system,
    options as params, the response, timings and token counts."""
    row = need_dict(value, "the row")
    llm_id = row.get("id")
    if isinstance(llm_id, int) and not isinstance(llm_id, bool):
        llm_id = str(llm_id)
    if not isinstance(llm_id, str) or not llm_id:
        raise RecordError(f"id should be a string, got {kind_of(llm_id)}")
    prompt = opt_str(row.get("prompt"), "prompt")
    system = opt_str(row.get("system"), "system") or None
    prompt_json = _json_column(row.get("prompt_json"), "prompt_json")
    options_json = _json_column(row.get("options_json"), "options_json")
    if options_json is not None and not isinstance(options_json, dict):
        raise RecordError(f"options_json should be an object, got {kind_of(options_json)}")
    params = json_safe(options_json or {}, "options_json")
    response_json = _json_column(row.get("response_json"), "response_json")
    messages = _prompt_messages(prompt_json)
    if messages is None:
        messages = ([{"role": "system", "content": system}] if system else []) + (
            [{"role": "user", "content": prompt}] if prompt is not None else [])
        own_system, last_user = system, prompt
    else:
        own_system, last_user = split_chat(messages)
    model = opt_str(row.get("model"), "model")
    resolved = opt_str(row.get("resolved_model"), "resolved_model")
    origin: dict[str, Any] = {LLM_ID_KEY: llm_id}
    if resolved and resolved != model:
        origin["model_alias"] = model
    for key in ("conversation_id", "conversation_name"):
        if row.get(key) is not None:
            origin[key] = opt_str(row[key], key)
    return [ImportedRecord(
        mode="chat", messages=messages or None, system_prompt=own_system or system,
        prompt=prompt if prompt is not None else last_user, response=opt_str(row.get("response"), "response"),
        model_name=resolved or model, params=params, seed=_seed(params),
        logprobs_requested=bool(params.get("logprobs") or params.get("top_logprobs")),
        finish_reason=_finish_reason(response_json),
        prompt_tokens=opt_int(row.get("input_tokens"), "input_tokens"),
        completion_tokens=opt_int(row.get("output_tokens"), "output_tokens"),
        duration_ms=opt_float(row.get("duration_ms"), "duration_ms"),
        started_at=_started(row.get("datetime_utc")), origin=origin,
    )]


def _prompt_messages(prompt_json: Any) -> list[dict[str, Any]] | None:
    """The chat messages an OpenAI-style plugin recorded in prompt_json, or None."""
    if not isinstance(prompt_json, dict) or not isinstance(prompt_json.get("messages"), list):
        return None
    try:
        return chat_messages(prompt_json["messages"], "prompt_json.messages") or None
    except RecordError:
        return None  # another plugin's shape: fall back to the prompt and system columns


def _seed(params: dict[str, Any]) -> int | None:
    seed = params.get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) and -(2**63) <= seed < 2**63 else None


def _finish_reason(response_json: Any) -> str | None:
    """finish_reason (OpenAI) or stop_reason (Anthropic) from the recorded response, if any."""
    if not isinstance(response_json, dict):
        return None
    for key in ("finish_reason", "stop_reason", "done_reason"):
        if isinstance(response_json.get(key), str):
            return str(response_json[key])
    choices = response_json.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        reason = choices[0].get("finish_reason")
        return reason if isinstance(reason, str) else None
    return None


def _started(value: Any) -> str | None:
    return iso_time(value) if isinstance(value, str) else None
