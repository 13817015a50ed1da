"""simonw/llm's logs.db from 0.32 on: `turns` over a content-addressed message store, read-only.

Since 0.32 llm records each model call as a row of `turns` (model, options, usage, timing) that
points into `messages` (hash, parent_hash, role) and their `parts` (text, reasoning, tool calls and
results, attachments; long text may be stored as `fragments` referenced from the part's JSON
payload). A turn's input is the chain of messages ending at `parent_message_hash` (the whole
conversation so far, system message first); its output is the chain from `tip_message_hash` back
to, not including, `parent_message_hash`. The older `responses` table stays beside these tables in
a database llm has upgraded; llm_logs.py reads it.

iter_turns() turns each row of `turns` into a plain dict for read_llm_row (in llm_logs.py): the
turn's columns, the thread's name, and `input` / `output` as [{role, content, ...}] messages.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

TURN_COLUMNS = (
    "id", "model", "resolved_model", "options_json", "response_json", "thread_id", "duration_ms",
    "datetime_utc", "input_tokens", "output_tokens",
)
REQUIRED_TURN_COLUMNS = ("id", "model", "parent_message_hash", "tip_message_hash")
MAX_CHAIN = 100_000  # messages followed from one tip before the chain is called broken
CACHE_MESSAGES = 20_000  # resolved messages kept between turns (a conversation's turns share them)
TURN_MARK = "turn"  # the `schema` key of a turn's record


class BrokenChain(ValueError):
    """A turn's messages cannot be followed: a missing message, a loop, or unreadable parts."""


def table_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """The column names of `table` ([] when there is no such table)."""
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})").fetchall()]


def has_turns(conn: sqlite3.Connection) -> bool:
    """True when the database has llm's `turns`, `messages` and `parts` tables with their keys."""
    return (all(name in table_columns(conn, "turns") for name in REQUIRED_TURN_COLUMNS)
            and {"hash", "parent_hash", "role"} <= set(table_columns(conn, "messages"))
            and {"message_hash", "position", "type", "text", "payload"} <= set(table_columns(conn, "parts")))


def count_turns(conn: sqlite3.Connection) -> int:
    """How many rows `turns` holds."""
    return int(conn.execute("SELECT count(*) FROM turns").fetchone()[0])


def iter_turns(conn: sqlite3.Connection) -> Iterator[dict[str, Any] | BrokenChain]:
    """Each turn, in insertion (rowid) order, as a dict with `input` and `output` messages, or a
    BrokenChain saying why its messages cannot be read (the turn's id in the message)."""
    present = set(table_columns(conn, "turns"))
    names = [name for name in TURN_COLUMNS if name in present]
    select = ", ".join(f"t.{name}" for name in names) + ", t.parent_message_hash, t.tip_message_hash"
    join = ""
    if {"id", "name"} <= set(table_columns(conn, "threads")) and "thread_id" in present:
        select += ", th.name"
        join = "LEFT JOIN threads th ON th.id = t.thread_id"
    store = MessageStore(conn)
    cursor = conn.execute(f"SELECT {select} FROM turns t {join} ORDER BY t.rowid")
    for values in cursor:
        row = dict(zip([*names, "parent_message_hash", "tip_message_hash", "thread_name"], values))
        try:
            inputs = store.chain(row["parent_message_hash"])
            outputs = store.chain(row["tip_message_hash"], stop=row["parent_message_hash"])
        except BrokenChain as exc:
            yield BrokenChain(f"turn {row.get('id')!s:.40}: {exc}")
            continue
        record = {key: row[key] for key in names}
        record["conversation_id"] = record.pop("thread_id", None)
        record["conversation_name"] = row.get("thread_name")
        record.update(schema=TURN_MARK, input=inputs, output=outputs)
        yield record


class MessageStore:
    """Messages of llm's store resolved to {role, content, ...}, cached by hash."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.cache: dict[str, tuple[str | None, dict[str, Any]]] = {}

    def chain(self, tip: str | None, stop: str | None = None) -> list[dict[str, Any]]:
        """The messages from the root (or from just after `stop`) to `tip`, oldest first."""
        found: list[dict[str, Any]] = []
        seen: set[str] = set()
        current = tip
        while current is not None and current != stop:
            if current in seen or len(found) >= MAX_CHAIN:
                raise BrokenChain(f"message {str(current)[:16]} is reached twice (its chain loops)")
            seen.add(current)
            parent, message = self.message(current)
            found.append(message)
            current = parent
        if stop is not None and current != stop:
            raise BrokenChain(f"its output chain does not lead back to its input message {str(stop)[:16]}")
        found.reverse()
        return found

    def message(self, hash_: str) -> tuple[str | None, dict[str, Any]]:
        """(parent hash, message) of one stored message."""
        if hash_ in self.cache:
            return self.cache[hash_]
        row = self.conn.execute("SELECT parent_hash, role FROM messages WHERE hash = ?", [hash_]).fetchone()
        if row is None:
            raise BrokenChain(f"message {str(hash_)[:16]} is missing from the messages table")
        parent, role = row
        if not isinstance(role, str) or not role:
            raise BrokenChain(f"message {str(hash_)[:16]} has no role")
        message = self._assemble(role, self.conn.execute(
            "SELECT type, tool_name, text, payload FROM parts WHERE message_hash = ? ORDER BY position",
            [hash_]).fetchall(), hash_)
        if len(self.cache) >= CACHE_MESSAGES:
            self.cache.clear()
        self.cache[hash_] = (parent, message)
        return parent, message

    def _assemble(self, role: str, parts: list[tuple[Any, ...]], hash_: str) -> dict[str, Any]:
        texts: list[str] = []
        reasoning: list[str] = []
        calls: list[dict[str, Any]] = []
        attachments = 0
        for kind, tool_name, text, payload_text in parts:
            payload = self._payload(payload_text, hash_)
            if kind in ("text", "reasoning"):
                value = text if isinstance(text, str) else self._text_ref(payload, hash_)
                (texts if kind == "text" else reasoning).append(value)
            elif kind == "tool_call":
                calls.append({"name": tool_name or payload.get("name"), "arguments": payload.get("arguments"),
                              "tool_call_id": payload.get("tool_call_id")})
            elif kind == "tool_result":
                output = payload.get("output")
                texts.append(output if isinstance(output, str) else json.dumps(output, ensure_ascii=False))
            elif kind == "attachment":
                attachments += 1
        message: dict[str, Any] = {"role": role, "content": "".join(texts)}
        if calls:
            message["tool_calls"] = calls
        if reasoning:
            message["reasoning"] = "".join(reasoning)
        if attachments:
            message["attachments"] = attachments
        return message

    def _payload(self, payload_text: Any, hash_: str) -> dict[str, Any]:
        if payload_text is None:
            return {}
        try:
            payload = json.loads(payload_text) if isinstance(payload_text, str) else None
        except ValueError as exc:
            raise BrokenChain(f"a part of message {str(hash_)[:16]} has a payload that is not JSON ({exc})") from exc
        if not isinstance(payload, dict):
            raise BrokenChain(f"a part of message {str(hash_)[:16]} has a payload that is not a JSON object")
        return payload

    def _text_ref(self, payload: dict[str, Any], hash_: str) -> str:
        """A part's text rebuilt from its text_ref pieces (literals and fragment ids)."""
        pieces = payload.get("text_ref")
        if pieces is None:
            text = payload.get("text")
            if isinstance(text, str):
                return text
            raise BrokenChain(f"a text part of message {str(hash_)[:16]} has no text")
        if not isinstance(pieces, list):
            raise BrokenChain(f"a text part of message {str(hash_)[:16]} has a malformed text_ref")
        out: list[str] = []
        for piece in pieces:
            if isinstance(piece, dict) and isinstance(piece.get("literal"), str):
                out.append(piece["literal"])
            elif isinstance(piece, dict) and isinstance(piece.get("fragment"), (int, str)):
                row = self.conn.execute("SELECT content FROM fragments WHERE id = ?", [piece["fragment"]]).fetchone()
                if row is None or not isinstance(row[0], str):
                    raise BrokenChain(f"message {str(hash_)[:16]} uses fragment {piece['fragment']!s:.20}, "
                                      "which is missing")
                out.append(row[0])
            else:
                raise BrokenChain(f"a text part of message {str(hash_)[:16]} has a malformed text_ref piece")
        return "".join(out)


__all__ = ["BrokenChain", "MessageStore", "REQUIRED_TURN_COLUMNS", "TURN_MARK", "count_turns", "has_turns",
           "iter_turns", "table_columns"]
