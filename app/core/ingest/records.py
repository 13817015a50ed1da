"""The normalized imported record, its ledger row, and the checked conversions readers share.

Every reader turns one source record into ImportedRecord objects (one per generation it holds);
`to_row` makes the ledger row and `checked_row` proves the row can be written, so that a bad value
becomes a counted malformed record instead of failing a whole batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from app.core.ingest.errors import RecordError
from app.core.store.chain import dump_json
from app.core.store.ledger import prepare_row
from app.core.store.schema import GENERATION_COLUMNS

SOURCE = "import"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
SYSTEM_ROLES = ("system", "developer")
# Keys of an OpenAI message kept besides role and content (tool use, names).
MESSAGE_EXTRA_KEYS = ("name", "tool_calls", "tool_call_id", "function_call", "refusal")
# Text-bearing content part types (chat completions, Responses API).
TEXT_PART_TYPES = ("text", "input_text", "output_text")


@dataclass
class ReadOptions:
    """What a reader needs besides the record: hand-named fields, and for a Batch API output file
    the index of its input file (anything with `request_for(custom_id) -> ImportedRecord | None`)."""

    prompt_field: str | None = None
    response_field: str | None = None
    requests: Any = None


@dataclass
class ImportedRecord:
    """One generation read from an import file, in the ledger's terms.

    messages: the full chat request, system message first (chat mode); prompt: the completion
    prompt or the last user message; response: None when the file holds only the request.
    origin: extra facts about where it came from (custom_id, turn, ...), stored in meta.import.
    """

    mode: str | None = "chat"
    messages: list[dict[str, Any]] | None = None
    system_prompt: str | None = None
    prompt: str | None = None
    response: str | None = None
    model_name: str | None = None
    params: dict[str, Any] | None = None
    seed: int | None = None
    logprobs_requested: bool | None = None
    finish_reason: str | None = None
    logprobs: Any = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    duration_ms: float | None = None
    started_at: str | None = None
    finished_at: str | None = None  # when the file says; else started_at + duration_ms
    status: str = "ok"
    error: str | None = None
    origin: dict[str, Any] = field(default_factory=dict)

    def to_row(self, workflow: str, import_meta: dict[str, Any]) -> dict[str, Any]:
        """The ledger record (source `import`, no model file) with meta {"import": {...}}."""
        meta = {**self.origin, **import_meta, "time_from": "record" if self.started_at else "import"}
        started = self.started_at or import_meta.get("imported_at")
        tokens_per_s = None
        if self.completion_tokens and self.duration_ms and self.duration_ms > 0:
            tokens_per_s = self.completion_tokens / (self.duration_ms / 1000)
        return {
            "started_at": started,
            "finished_at": self.finished_at or (_plus_ms(started, self.duration_ms) if self.started_at else started),
            "source": SOURCE,
            "workflow": workflow,
            "model_sha256": None,
            "model_name": self.model_name,
            "mode": self.mode,
            "system_prompt": self.system_prompt,
            "prompt": self.prompt,
            "messages": self.messages,
            "params": self.params or None,
            "seed": self.seed,
            "logprobs_requested": None if self.logprobs_requested is None else int(self.logprobs_requested),
            "response": self.response,
            "finish_reason": self.finish_reason,
            "logprobs": self.logprobs,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "duration_ms": self.duration_ms,
            "tokens_per_s": tokens_per_s,
            "status": self.status,
            "error": self.error,
            "meta": {"import": meta},
        }


def checked_row(row: dict[str, Any]) -> dict[str, Any]:
    """`row` prepared for the ledger exactly as Ledger.append_many will store and hash it (so the
    batch does the work once); RecordError when a value cannot be stored."""
    try:
        prepared = prepare_row(row)
        for name, kind in GENERATION_COLUMNS.items():
            value = prepared.get(name)
            if kind == "INTEGER" and value is not None and not INT64_MIN <= value <= INT64_MAX:
                raise RecordError(f"{name} is out of range ({value})")
            if isinstance(value, str):
                value.encode("utf-8")
    except RecordError:
        raise
    except UnicodeEncodeError as exc:
        raise RecordError("the text is not valid Unicode (it holds a lone surrogate)") from exc
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise RecordError(f"a value cannot be stored: {exc}") from exc
    return prepared


# -- checked conversions ------------------------------------------------------------------------


def kind_of(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def need_dict(value: Any, what: str) -> dict[str, Any]:
    """`value` if it is an object, else RecordError."""
    if not isinstance(value, dict):
        raise RecordError(f"{what} should be an object, got {kind_of(value)}")
    return value


def opt_dict(value: Any, what: str) -> dict[str, Any] | None:
    """An optional object."""
    return None if value is None else need_dict(value, what)


def need_str(value: Any, what: str) -> str:
    """`value` if it is a string, else RecordError."""
    if not isinstance(value, str):
        raise RecordError(f"{what} should be a string, got {kind_of(value)}")
    return value


def opt_str(value: Any, what: str) -> str | None:
    """An optional string."""
    return None if value is None else need_str(value, what)


def opt_int(value: Any, what: str) -> int | None:
    """An optional whole number in SQLite's range (a float with no fraction is accepted)."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"{what} should be a whole number, got {kind_of(value)}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise RecordError(f"{what} is out of range")
    return value


def opt_float(value: Any, what: str) -> float | None:
    """An optional finite number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"{what} should be a number, got {kind_of(value)}")
    try:
        number = float(value)
    except OverflowError as exc:
        raise RecordError(f"{what} is out of range") from exc
    if math.isnan(number) or math.isinf(number):
        raise RecordError(f"{what} is not a finite number")
    return number


def content_text(content: Any, what: str) -> str | None:
    """Message content as text: a string, or the text parts of a content list ([image] for others)."""
    if content is None or isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise RecordError(f"{what} should be a string or a list of parts, got {kind_of(content)}")
    pieces: list[str] = []
    for i, part in enumerate(content, 1):
        if isinstance(part, str):
            pieces.append(part)
            continue
        part = need_dict(part, f"{what} part {i}")
        kind = part.get("type")
        if kind in TEXT_PART_TYPES or (kind is None and "text" in part):
            pieces.append(need_str(part.get("text"), f"{what} part {i} text"))
        elif isinstance(kind, str):
            pieces.append(f"[{kind}]")
        else:
            raise RecordError(f"{what} part {i} has no type")
    return "\n".join(pieces)


def chat_messages(raw: Any, what: str = "messages") -> list[dict[str, Any]]:
    """A checked list of OpenAI-style messages as [{role, content, ...}] with text content."""
    if not isinstance(raw, list):
        raise RecordError(f"{what} should be a list, got {kind_of(raw)}")
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(raw, 1):
        item = need_dict(item, f"{what}[{i}]")
        role = need_str(item.get("role"), f"{what}[{i}].role")
        if "content" not in item and not any(key in item for key in MESSAGE_EXTRA_KEYS):
            raise RecordError(f"{what}[{i}] has no content")
        message: dict[str, Any] = {"role": role, "content": content_text(item.get("content"),
                                                                          f"{what}[{i}].content") or ""}
        for key in MESSAGE_EXTRA_KEYS:
            if item.get(key) is not None:
                message[key] = item[key]
        messages.append(message)
    return messages


def split_chat(messages: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """(system prompt, last user message) of a chat: leading system/developer messages joined."""
    system: list[str] = []
    for message in messages:
        if message["role"] not in SYSTEM_ROLES:
            break
        system.append(message["content"])
    users = [m["content"] for m in messages if m["role"] == "user"]
    return ("\n\n".join(system) if system else None), (users[-1] if users else None)


def iso_time(value: Any) -> str | None:
    """An ISO 8601 UTC time (the ledger's format) from epoch seconds or an ISO string; None if neither."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(value, timezone.utc)
        elif isinstance(value, str) and value.strip():
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            moment = moment.astimezone(timezone.utc)
        else:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    return moment.isoformat(timespec="microseconds")


def _plus_ms(started: str | None, duration_ms: float | None) -> str | None:
    if not started or not duration_ms:
        return started
    try:
        moment = datetime.fromisoformat(started)
        return (moment + timedelta(milliseconds=duration_ms)).isoformat(timespec="microseconds")
    except (ValueError, OverflowError):
        return started


def json_safe(value: Any, what: str) -> Any:
    """`value` if it serializes as strict JSON (no NaN), else RecordError."""
    try:
        dump_json(value)
    except (ValueError, TypeError, RecursionError) as exc:
        raise RecordError(f"{what} cannot be stored as JSON ({exc})") from exc
    return value
