"""Export of log rows to JSONL (every field), Markdown (for reading, and read back exactly by the
import: model and workflow names as JSON, each text in a fence longer than its backtick runs) and
ShareGPT (for training)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from sqlite_utils import Database

from app.core.outfiles import replace_file
from app.core.store.events import record_event

EXPORT_FORMATS = ("jsonl", "markdown", "sharegpt")
_SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt", "tool": "tool"}


def export_rows(rows: Iterable[dict[str, Any]], fmt: str, out: Path) -> int:
    """Write `rows` (decoded generation rows, id order) to `out` in `fmt`; returns records written.
    The file is created owner-only (0600) and replaces `out` atomically once complete."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    writer = {"jsonl": _write_jsonl, "markdown": _write_markdown, "sharegpt": _write_sharegpt}[fmt]
    out.parent.mkdir(parents=True, exist_ok=True)
    with replace_file(out) as handle:  # owner-only (it holds prompts and responses), replaced atomically
        return writer(rows, handle)


def _write_jsonl(rows: Iterable[dict[str, Any]], handle: IO[str]) -> int:
    count = 0
    for row in rows:
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count


def conversation_turns(row: dict[str, Any]) -> list[dict[str, str]]:
    """The messages of a row plus its response, as [{role, content}] (system first if any)."""
    turns: list[dict[str, str]] = []
    messages = row.get("messages")
    if isinstance(messages, list) and messages:
        turns.extend({"role": str(m.get("role")), "content": str(m.get("content") or "")} for m in messages)
    else:
        if row.get("system_prompt"):
            turns.append({"role": "system", "content": row["system_prompt"]})
        turns.append({"role": "user", "content": row.get("prompt") or ""})
    turns.append({"role": "assistant", "content": row.get("response") or ""})
    return turns


def _write_sharegpt(rows: Iterable[dict[str, Any]], handle: IO[str]) -> int:
    """One record per conversation, from its last successful turn (which carries the history);
    each gpt turn that is a generation of the ledger names it, its model and when it started.
    A successful turn that the last one's history does not hold gets a record of its own, so no
    generation is left out."""
    conversations: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("status") != "ok":
            continue
        key = row.get("conversation_id") or f"generation-{row['id']}"
        conversations.setdefault(key, []).append(row)
    records: list[dict[str, Any]] = []
    for key, turns in conversations.items():
        covered = _sharegpt_record(key, turns[-1], turns[:-1], records)
        for row in turns[:-1]:
            if row["id"] not in covered:
                _sharegpt_record(f"{key}-generation-{row['id']}", row, [], records)
    json.dump(records, handle, ensure_ascii=False, indent=1)
    return len(records)


def _sharegpt_record(key: str, last: dict[str, Any], earlier: list[dict[str, Any]],
                     records: list[dict[str, Any]]) -> set[int]:
    """Append the record of `last`'s conversation; returns the ids of the generations it holds (the
    earlier rows whose responses are the history's gpt turns, in order, and `last`)."""
    turns = conversation_turns(last)
    answers = [i for i, turn in enumerate(turns[:-1]) if turn["role"] == "assistant"]
    owners: dict[int, dict[str, Any]] = {len(turns) - 1: last}
    pending = list(earlier)
    for index in answers:
        if pending and (pending[0].get("response") or "") == turns[index]["content"]:
            owners[index] = pending.pop(0)
    conversation = []
    for index, turn in enumerate(turns):
        entry: dict[str, Any] = {"from": _SHAREGPT_ROLES.get(turn["role"], turn["role"]), "value": turn["content"]}
        owner = owners.get(index)
        if owner is not None:
            entry |= {"stillroom_generation_id": owner["id"], "model": owner.get("model_name"),
                      "started_at": owner.get("started_at")}
        conversation.append(entry)
    records.append({"id": key, "stillroom_generation_id": last["id"], "model": last.get("model_name"),
                    "conversations": conversation})
    return {row["id"] for row in owners.values()}


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text`."""
    longest, run = 0, 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def _write_markdown(rows: Iterable[dict[str, Any]], handle: IO[str]) -> int:
    count = 0
    handle.write("# Stillroom ledger export\n")
    for row in rows:
        count += 1
        handle.write(
            f"\n## Generation {row['id']}\n\n"
            f"- started: {row.get('started_at')}\n"
            f"- model: {json.dumps(row.get('model_name'), ensure_ascii=False)} "
            f"(sha256 {str(row.get('model_sha256') or '')[:12]})\n- mode: {row.get('mode')}\n"
            f"- source: {row.get('source')}, workflow: {json.dumps(row.get('workflow'), ensure_ascii=False)}, "
            f"status: {row.get('status')}\n"
            f"- tokens: {row.get('prompt_tokens')} in, {row.get('completion_tokens')} out\n"
        )
        for turn in conversation_turns(row):
            text = turn["content"]
            fence = _fence(text)
            handle.write(f"\n### {turn['role']}\n\n{fence}text\n{text}\n{fence}\n")
    return count


def record_export(db: Database, out: Path, fmt: str, count: int, filters: dict[str, Any] | None = None) -> int:
    """Log a finished export in the event log (through `db`, a write connection); returns the event id."""
    used = {key: value for key, value in (filters or {}).items() if value not in (None, "", [], ())}
    return record_event(db, "export", f"exported {count} record(s) as {fmt} to {out}",
                        {"path": str(Path(out).resolve()), "format": fmt, "records": count, "filters": used})
