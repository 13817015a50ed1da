"""The llm 0.32+ reader on message stores written by llm's own LogStore: fragments referenced from
parts, reasoning and tool calls, and hostile damage (a missing message, a loop) reported per turn."""

from __future__ import annotations

from pathlib import Path

import sqlite_utils
from llm.logs import LogStore
from llm.parts import Message, ReasoningPart, TextPart, ToolCallPart

from app.core.ingest import run_import
from app.core.store import Ledger
from app.core.store.queries import LogFilter, iter_generations

DOCUMENT = "A long shared document about lighthouses. " * 40


def store_turn(store: LogStore, turn_id: str, inputs: list[Message], outputs: list[Message],
               fragments: list[str] | None = None, response_json: str | None = None) -> None:
    """Messages through llm's own writer; the turn row as llm's LogStore.log writes one."""
    parent = store.ensure_chain(inputs, fragments=fragments)
    tip = store.ensure_chain(outputs, parent=parent)
    thread = store.ensure_thread(f"thread-{turn_id}", name="a thread")
    store.db["turns"].insert({"id": turn_id, "thread_id": thread, "parent_message_hash": parent,
                              "tip_message_hash": tip, "model": "test-model", "options_json": '{"temperature": 0.1}',
                              "duration_ms": 25, "datetime_utc": "2026-01-02T03:04:05.678901+00:00",
                              "input_tokens": 9, "output_tokens": 4, "response_json": response_json})


def imported(ledger: Ledger, logs: Path) -> tuple[object, list[dict]]:
    summary = run_import(ledger, logs, "turns")
    return summary, list(iter_generations(ledger.db, LogFilter(workflow="turns")))


def test_fragments_reasoning_and_tool_calls(ledger: Ledger, tmp_path: Path) -> None:
    logs = tmp_path / "logs.db"
    store = LogStore(sqlite_utils.Database(logs))
    question = DOCUMENT + "\nWhich lighthouse is oldest?"
    store_turn(store, "t1", [Message("system", [TextPart("Cite sources.")]), Message("user", [TextPart(question)])],
               [Message("assistant", [ReasoningPart("Think about Alexandria."), TextPart("The Tower of Hercules."),
                                      ToolCallPart(name="lookup", arguments={"q": "Hercules"}, tool_call_id="c1")])],
               fragments=[DOCUMENT])
    assert store.db["part_fragments"].count >= 1  # the document is stored once, as a fragment
    store_turn(store, "t2", [Message("user", [TextPart("Once upon a time")])],
               [Message("assistant", [TextPart(" there was a lamp.")])],
               response_json='{"object": "text_completion", "choices": [{"text": " there was a lamp."}]}')
    summary, rows = imported(ledger, logs)
    assert (summary.rows_written, summary.malformed) == (2, 0)
    chat, completion = rows
    assert (chat["prompt"], chat["system_prompt"], chat["response"]) == (question, "Cite sources.",
                                                                         "The Tower of Hercules.")
    assert chat["messages"] == [{"role": "system", "content": "Cite sources."}, {"role": "user", "content": question}]
    assert (chat["model_name"], chat["params"], chat["started_at"]) == (
        "test-model", {"temperature": 0.1}, "2026-01-02T03:04:05.678901+00:00")
    assert (completion["mode"], completion["messages"], completion["prompt"]) == (
        "completion", None, "Once upon a time")


def test_a_damaged_store_is_reported_per_turn(ledger: Ledger, tmp_path: Path) -> None:
    logs = tmp_path / "logs.db"
    store = LogStore(sqlite_utils.Database(logs))
    for i in range(3):
        store_turn(store, f"t{i}", [Message("user", [TextPart(f"Question {i}")])],
                   [Message("assistant", [TextPart(f"Answer {i}")])])
    tip = store.db.execute("SELECT tip_message_hash FROM turns WHERE id = 't1'").fetchone()[0]
    store.db.execute("PRAGMA foreign_keys = OFF")
    store.db.execute("DELETE FROM parts WHERE message_hash = ?", [tip])
    store.db.execute("DELETE FROM messages WHERE hash = ?", [tip])
    first = store.db.execute("SELECT parent_message_hash FROM turns WHERE id = 't2'").fetchone()[0]
    store.db.execute("UPDATE messages SET parent_hash = hash WHERE hash = ?", [first])  # a loop
    store.db.conn.commit()
    summary, rows = imported(ledger, logs)
    assert [r["prompt"] for r in rows] == ["Question 0"]
    assert summary.malformed == 2
    reasons = [str(issue) for issue in summary.issues]
    assert any("turn t1" in r and "missing from the messages table" in r for r in reasons), reasons
    assert any("turn t2" in r and "reached twice" in r for r in reasons), reasons
