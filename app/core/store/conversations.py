"""Chat conversations: titles and settings in `conversations`, turns rebuilt from the generation log.

A conversation's turns are generation rows that share its conversation_id. Each row's parent_id
names the turn it continues (None for the first turn); a regenerated answer has the same parent as
the row it replaces and records {"regenerates": <old id>} in its meta. The conversation as it stands
is the path from its newest row back through the parents, so regenerations and stopped turns fall
into place without rewriting anything in the append-only log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlite_utils import Database

from app.core.errors import NotFoundError
from app.core.store.db import translate_errors
from app.core.store.ledger import utc_now
from app.core.store.schema import GENERATIONS_TABLE

CONVERSATIONS_TABLE = "conversations"
TITLE_CHARS = 60
UNTITLED = "New conversation"
_TURN_COLUMNS = (
    "id", "parent_id", "started_at", "prompt", "response", "status", "error", "finish_reason",
    "model_name", "model_sha256", "prompt_tokens", "completion_tokens", "tokens_per_s", "duration_ms",
    "seed", "prompt_hash",
)


@dataclass(frozen=True)
class Conversation:
    """A chat conversation's own record (its turns live in the generation log)."""

    id: str
    title: str
    created_at: str
    updated_at: str
    system_prompt: str | None = None
    model_sha256: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Turn:
    """One exchange: the user's message and the logged answer (partial when cancelled)."""

    generation_id: int
    parent_id: int | None
    started_at: str
    prompt: str
    response: str
    status: str
    error: str | None
    finish_reason: str | None
    model_name: str | None
    model_sha256: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    tokens_per_s: float | None
    duration_ms: float | None
    seed: int | None
    prompt_hash: str | None = None  # of the whole prompt, also when the row keeps only an excerpt of it


def title_from_prompt(prompt: str) -> str:
    """A conversation title from its first message: the first line, shortened to TITLE_CHARS."""
    line = next((part.strip() for part in prompt.splitlines() if part.strip()), "")
    if not line:
        return UNTITLED
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


def _from_row(row: dict[str, Any]) -> Conversation:
    settings = row.get("settings")
    try:
        parsed = json.loads(settings) if isinstance(settings, str) and settings else {}
    except json.JSONDecodeError:
        parsed = {}
    return Conversation(
        id=row["id"], title=row.get("title") or UNTITLED, created_at=row.get("created_at") or "",
        updated_at=row.get("updated_at") or row.get("created_at") or "",
        system_prompt=row.get("system_prompt"), model_sha256=row.get("model_sha256"),
        settings=parsed if isinstance(parsed, dict) else {},
    )


def save_conversation(db: Database, conversation: Conversation) -> Conversation:
    """Create or update a conversation record (through a write connection); returns what was stored."""
    row = {
        "id": conversation.id, "title": conversation.title, "created_at": conversation.created_at or utc_now(),
        "updated_at": conversation.updated_at or utc_now(), "system_prompt": conversation.system_prompt,
        "model_sha256": conversation.model_sha256, "settings": json.dumps(conversation.settings, sort_keys=True),
    }
    with translate_errors(CONVERSATIONS_TABLE):
        db[CONVERSATIONS_TABLE].upsert(row, pk="id")
    return _from_row(row)


def rename_conversation(db: Database, conversation_id: str, title: str) -> None:
    """Give a conversation a new title (an empty title resets it to the default)."""
    title = " ".join(title.split()) or UNTITLED
    with translate_errors(CONVERSATIONS_TABLE):
        found = db.execute(f"SELECT 1 FROM {CONVERSATIONS_TABLE} WHERE id = ?", [conversation_id]).fetchone()
        if found:
            db[CONVERSATIONS_TABLE].update(conversation_id, {"title": title, "updated_at": utc_now()})
        else:  # a conversation started in the terminal has turns but no record yet
            db[CONVERSATIONS_TABLE].insert({"id": conversation_id, "title": title, "created_at": utc_now(),
                                            "updated_at": utc_now(), "settings": "{}"})


def get_conversation(db: Database, conversation_id: str) -> Conversation:
    """One conversation by id (a terminal chat without a record gets one made up from its turns)."""
    cursor = db.execute(f"SELECT * FROM {CONVERSATIONS_TABLE} WHERE id = ?", [conversation_id])
    names = [d[0] for d in cursor.description]
    values = cursor.fetchone()
    if values is not None:
        return _from_row(dict(zip(names, values)))
    unrecorded = _unrecorded(db, conversation_id)
    if unrecorded:
        return unrecorded[0]
    raise NotFoundError(f"no conversation with id {conversation_id}")


def list_conversations(db: Database, limit: int = 500) -> list[Conversation]:
    """Conversations, most recently updated first, including terminal chats that have no record."""
    cursor = db.execute(f"SELECT * FROM {CONVERSATIONS_TABLE} ORDER BY updated_at DESC LIMIT ?", [limit])
    names = [d[0] for d in cursor.description]
    recorded = [_from_row(dict(zip(names, values))) for values in cursor.fetchall()]
    found = recorded + _unrecorded(db)
    found.sort(key=lambda c: c.updated_at, reverse=True)
    return found[:limit]


def _unrecorded(db: Database, conversation_id: str | None = None) -> list[Conversation]:
    """Conversations that exist only as generation rows (e.g. `stillroom chat` in a terminal)."""
    only = "AND conversation_id = ?" if conversation_id else ""
    cursor = db.execute(
        f"SELECT conversation_id, min(started_at), max(started_at), min(id) FROM {GENERATIONS_TABLE} "
        f"WHERE conversation_id IS NOT NULL {only} AND conversation_id NOT IN "
        f"(SELECT id FROM {CONVERSATIONS_TABLE}) GROUP BY conversation_id",
        [conversation_id] if conversation_id else [],
    )
    rows = cursor.fetchall()
    result = []
    for cid, first, last, first_id in rows:
        prompt = db.execute(f"SELECT prompt, system_prompt FROM {GENERATIONS_TABLE} WHERE id = ?",
                            [first_id]).fetchone()
        result.append(Conversation(id=cid, title=title_from_prompt(prompt[0] or ""), created_at=first,
                                   updated_at=last, system_prompt=prompt[1]))
    return result


def conversation_turns(db: Database, conversation_id: str) -> list[Turn]:
    """The turns of a conversation as it stands: the parent path of its newest row, oldest first."""
    cursor = db.execute(
        f"SELECT {', '.join(_TURN_COLUMNS)} FROM {GENERATIONS_TABLE} WHERE conversation_id = ? ORDER BY id",
        [conversation_id],
    )
    rows = {values[0]: dict(zip(_TURN_COLUMNS, values)) for values in cursor.fetchall()}
    if not rows:
        return []
    path: list[dict[str, Any]] = []
    current: int | None = max(rows)
    seen: set[int] = set()
    while current is not None and current in rows and current not in seen:
        seen.add(current)
        row = rows[current]
        path.append(row)
        current = row["parent_id"]
    return [_turn(row) for row in reversed(path)]


def _turn(row: dict[str, Any]) -> Turn:
    return Turn(
        generation_id=row["id"], parent_id=row["parent_id"], started_at=row["started_at"] or "",
        prompt=row["prompt"] or "", response=row["response"] or "", status=row["status"] or "ok",
        error=row["error"], finish_reason=row["finish_reason"], model_name=row["model_name"],
        model_sha256=row["model_sha256"], prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"], tokens_per_s=row["tokens_per_s"],
        duration_ms=row["duration_ms"], seed=row["seed"], prompt_hash=row["prompt_hash"],
    )


def history_messages(turns: list[Turn]) -> list[dict[str, str]]:
    """The chat messages that continue after `turns` (failed turns are left out)."""
    messages: list[dict[str, str]] = []
    for turn in turns:
        if turn.status == "error":
            continue
        messages.append({"role": "user", "content": turn.prompt})
        messages.append({"role": "assistant", "content": turn.response})
    return messages
