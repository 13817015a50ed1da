"""simonw/llm's logs.db, read-only: the `responses` table of llm 0.2x-0.31 (and `conversations` for
names), then the `turns` of llm 0.32 on (llm_turns.py); a database llm upgraded holds both.

Columns of `responses` used where present (llm adds them over its migrations): id, model,
resolved_model, prompt, system, prompt_json, options_json, response, response_json,
conversation_id, duration_ms, datetime_utc, input_tokens, output_tokens. Rows are read in
insertion (rowid) order, `responses` first; a record's position is its 1-based place in that
order, and it is de-duplicated by llm's own response or turn id.

A `responses` row holds only its own prompt; a continued conversation's history is rebuilt from
the earlier rows of the same conversation_id (system prompt when it changes, then each prompt and
response), as llm itself rebuilds it, unless prompt_json already records the messages sent. A
completion model's row (prompt_json messages that are plain text, or a `text_completion` response)
is imported as a completion, its prompt being the text the model was sent.

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
from app.core.ingest.readers.llm_turns import TURN_MARK, BrokenChain, count_turns, has_turns, iter_turns, table_columns
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


def check_llm_logs(path: Path) -> None:
    """Raise ImportFormatError unless `path` is an llm logs.db: a `responses` table with its columns
    (llm 0.2x-0.31), or the `turns` / `messages` / `parts` tables (llm 0.32 on), or both."""
    conn = connect_readonly(path)
    try:
        columns = table_columns(conn, "responses")
        turns = has_turns(conn)
    except sqlite3.Error as exc:
        raise ImportFormatError(f"{path}: the SQLite database cannot be read ({exc})") from exc
    finally:
        conn.close()
    if not columns and not turns:
        raise ImportFormatError(f"{path}: an SQLite database, but not simonw/llm's logs.db "
                                "(it has neither a `responses` table nor `turns`, `messages` and `parts`)")
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if columns and missing and not turns:
        raise ImportFormatError(f"{path}: its `responses` table lacks llm's columns {', '.join(missing)}")


def _legacy_ok(columns: list[str]) -> bool:
    return bool(columns) and all(name in columns for name in REQUIRED_COLUMNS)


class LlmLogsSource(Source):
    """The rows of `responses` as {column: value} dicts, with `conversation_name` joined in and the
    conversation's earlier turns as `history`; then the turns of llm 0.32 on (see llm_turns)."""

    unit = "row"
    progress_unit = "rows"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done = 0
        self.total: int | None = None

    def __iter__(self) -> Iterator[RawRecord | Issue]:
        guard = Guard(self.cancel)
        conn = connect_readonly(self.path, guard)
        position = 0
        try:
            present = table_columns(conn, "responses")
            legacy = _legacy_ok(present)
            turns = has_turns(conn)
            view = legacy and is_view(conn, "responses")
            # a view is computed, not stored: counting it may never end, and it has no rowid
            self.total = None if view else (
                (conn.execute("SELECT count(*) FROM responses").fetchone()[0] if legacy else 0)
                + (count_turns(conn) if turns else 0))
            guard.step()
            items: list[Iterator[dict[str, Any] | BrokenChain]] = []
            if present and not legacy and not is_view(conn, "responses"):
                skipped = conn.execute("SELECT count(*) FROM responses").fetchone()[0]
                if skipped:
                    missing = ", ".join(name for name in REQUIRED_COLUMNS if name not in present)
                    yield Issue(0, self.unit, f"the `responses` table lacks llm's columns {missing}: "
                                f"its {skipped} rows are not imported")
            if legacy:
                items.append(_with_history(_legacy_rows(conn, set(present), view)))
            if turns:
                items.append(iter_turns(conn))
            for rows in items:
                for row in rows:
                    position += 1
                    self.done = position
                    if isinstance(row, BrokenChain):
                        yield Issue(position, self.unit, str(row))
                    else:
                        yield RawRecord(position, row)
                    guard.step()  # the time the consumer took is not SQLite's
        except sqlite3.Error as exc:
            reason = guard.reason or f"the database cannot be read from here on ({exc})"
            yield Issue(position + 1, self.unit, reason)
        finally:
            conn.close()


def _legacy_rows(conn: sqlite3.Connection, present: set[str], view: bool = False
                 ) -> Iterator[dict[str, Any] | BrokenChain]:
    """The `responses` rows in insertion order; a view (not llm's table) at most MAX_VIEW_ROWS rows
    or MAX_VIEW_BYTES, then one BrokenChain saying the rest was not read."""
    names = [name for name in RESPONSE_COLUMNS if name in present]
    select = ", ".join(f"r.{name}" for name in names)
    join = ""
    if {"id", "name"} <= set(table_columns(conn, "conversations")) and "conversation_id" in present:
        select += ", c.name"
        names.append("conversation_name")
        join = "LEFT JOIN conversations c ON c.id = r.conversation_id"
    order = "" if view else "ORDER BY r.rowid"
    size = 0
    for count, values in enumerate(conn.execute(f"SELECT {select} FROM responses r {join} {order}")):
        size += row_bytes(values)
        if view and (count >= MAX_VIEW_ROWS or size > MAX_VIEW_BYTES):
            yield BrokenChain(f"`responses` is a view, not llm's table, and gives more than {MAX_VIEW_ROWS} rows "
                              f"or {MAX_VIEW_BYTES >> 20} MiB; the rest was not read")
            return
        yield dict(zip(names, values))


def _with_history(rows: Iterator[dict[str, Any] | BrokenChain]) -> Iterator[dict[str, Any] | BrokenChain]:
    """Each row with `history`: the messages of the earlier rows of its conversation, as llm
    sends them when a conversation is continued (the system prompt again only when it changes)."""
    histories: dict[Any, tuple[list[dict[str, Any]], Any]] = {}
    for row in rows:
        if isinstance(row, BrokenChain):
            yield row
            continue
        key = row.get("conversation_id")
        if key is None:
            row["history"] = []
            yield row
            continue
        history, system = histories.get(key, ([], None))
        row["history"] = list(history)
        yield row
        own_system = row.get("system")
        if isinstance(own_system, str) and own_system and own_system != system:
            history.append({"role": "system", "content": own_system})
            system = own_system
        history.append({"role": "user", "content": row.get("prompt") if isinstance(row.get("prompt"), str) else ""})
        history.append({"role": "assistant",
                        "content": row.get("response") if isinstance(row.get("response"), str) else ""})
        histories[key] = (history, system)


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
    """One `responses` row or one turn: the prompt and the conversation before it as messages
    (chat), or the text sent (completion); options as params, the response, timings and tokens."""
    row = need_dict(value, "the row")
    llm_id = row.get("id")
    if isinstance(llm_id, int) and not isinstance(llm_id, bool):
        llm_id = str(llm_id)
    if not isinstance(llm_id, str) or not llm_id:
        raise RecordError(f"id should be a string, got {kind_of(llm_id)}")
    options_json = _json_column(row.get("options_json"), "options_json")
    if options_json is not None and not isinstance(options_json, dict):
        raise RecordError(f"options_json should be an object, got {kind_of(options_json)}")
    params = json_safe(options_json or {}, "options_json")
    response_json = _json_column(row.get("response_json"), "response_json")
    if row.get("schema") == TURN_MARK:
        fields = _turn_fields(row, response_json)
    else:
        fields = _legacy_fields(row, response_json)
    model = opt_str(row.get("model"), "model")
    resolved = opt_str(row.get("resolved_model"), "resolved_model")
    origin: dict[str, Any] = {LLM_ID_KEY: llm_id, "llm_table": "turns" if row.get("schema") == TURN_MARK
                              else "responses"}
    if resolved and resolved != model:
        origin["model_alias"] = model
    for key in ("conversation_id", "conversation_name"):
        if row.get(key) is not None:
            origin[key] = opt_str(row[key], key)
    return [ImportedRecord(
        **fields, model_name=resolved or model, params=params, seed=_seed(params),
        logprobs_requested=bool(params.get("logprobs") or params.get("top_logprobs")),
        finish_reason=_finish_reason(response_json),
        prompt_tokens=opt_int(row.get("input_tokens"), "input_tokens"),
        completion_tokens=opt_int(row.get("output_tokens"), "output_tokens"),
        duration_ms=opt_float(row.get("duration_ms"), "duration_ms"),
        started_at=_started(row.get("datetime_utc")), origin=origin,
    )]


def _legacy_fields(row: dict[str, Any], response_json: Any) -> dict[str, Any]:
    """mode, messages, system_prompt, prompt and response of a `responses` row."""
    prompt = opt_str(row.get("prompt"), "prompt")
    system = opt_str(row.get("system"), "system") or None
    response = opt_str(row.get("response"), "response")
    prompt_json = _json_column(row.get("prompt_json"), "prompt_json")
    sent = _completion_text(prompt_json)
    if sent is not None or _is_completion(response_json):
        return {"mode": "completion", "messages": None, "system_prompt": system,
                "prompt": sent if sent is not None else prompt, "response": response}
    messages = _prompt_messages(prompt_json)
    if messages is None:
        history = row.get("history") or []
        system_sent = [{"role": "system", "content": system}] if system and not _system_in(history, system) else []
        messages = list(history) + system_sent + (
            [{"role": "user", "content": prompt}] if prompt is not None else [])
        own_system, last_user = system, prompt
    else:
        own_system, last_user = split_chat(messages)
    return {"mode": "chat", "messages": messages or None, "system_prompt": own_system or system,
            "prompt": prompt if prompt is not None else last_user, "response": response}


def _system_in(history: list[dict[str, Any]], system: str) -> bool:
    """True when the latest system message of the history is `system` (llm does not send it again)."""
    latest = [m["content"] for m in history if m.get("role") == "system"]
    return bool(latest) and latest[-1] == system


def _turn_fields(row: dict[str, Any], response_json: Any) -> dict[str, Any]:
    """mode, messages, system_prompt, prompt and response of a turn (llm 0.32 on)."""
    inputs, outputs = row.get("input"), row.get("output")
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise RecordError("the turn's input and output messages are missing")
    answers = [m for m in outputs if m.get("role") == "assistant"]
    if not answers:
        raise RecordError("the turn recorded no assistant message (no response)")
    response = "".join(str(m.get("content") or "") for m in answers)
    system, last_user = split_chat([{"role": m["role"], "content": m.get("content") or ""} for m in inputs])
    if _is_completion(response_json):
        sent = "\n".join(str(m.get("content") or "") for m in inputs if m.get("role") not in ("system", "developer"))
        return {"mode": "completion", "messages": None, "system_prompt": system, "prompt": sent,
                "response": response}
    messages = [{key: value for key, value in m.items() if key in ("role", "content", "tool_calls")}
                for m in inputs]
    return {"mode": "chat", "messages": messages or None, "system_prompt": system, "prompt": last_user,
            "response": response}


def _completion_text(prompt_json: Any) -> str | None:
    """The text a completion model was sent: llm records it as prompt_json {"messages": [text, ...]}
    and sends them joined by newlines; None for a chat's messages or anything else."""
    if not isinstance(prompt_json, dict) or not isinstance(prompt_json.get("messages"), list):
        return None
    texts = prompt_json["messages"]
    if not texts or not all(isinstance(text, str) for text in texts):
        return None
    return "\n".join(texts)


def _is_completion(response_json: Any) -> bool:
    """True when the recorded response is an OpenAI-style text completion (not a chat)."""
    if not isinstance(response_json, dict):
        return False
    if response_json.get("object") == "text_completion":
        return True
    choices = response_json.get("choices")
    return (isinstance(choices, list) and bool(choices) and isinstance(choices[0], dict)
            and "text" in choices[0] and "message" not in choices[0] and "delta" not in choices[0])


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
