"""Bounded excerpts of what the ledger would otherwise keep in full from an untrusted request.

A request refused before any token because it is longer than the model's context is still logged
(the ledger records every attempt), but as an excerpt: each long text is cut to EXCERPT_CHARS, at
most MAX_LOGGED_MESSAGES messages are kept, and the row's meta says so under `log_excerpt`, with the
sha256 and size of what was cut, so the full text can still be matched against a copy.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from app.core.textnorm import content_hash

EXCERPT_CHARS = 2000
MAX_LOGGED_MESSAGES = 16  # the first and the last half of them are kept
EXCERPT_NOTE = ("not logged in full: the request was longer than the model's context, so each text is "
                f"kept as its first {EXCERPT_CHARS} characters (at most {MAX_LOGGED_MESSAGES} messages), "
                "with the sha256 and size of the whole in meta.log_excerpt")


def digest(text: str) -> dict[str, Any]:
    """The sha256 (of the UTF-8 text) and size of `text`."""
    data = text.encode("utf-8", "surrogatepass")
    return {"sha256": hashlib.sha256(data).hexdigest(), "chars": len(text), "bytes": len(data)}


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The first `limit` characters of `text`."""
    return text[:limit]


def bounded_value(value: Any, limit: int) -> Any:
    """`value` itself when its JSON is at most `limit` characters; otherwise a dict with an excerpt
    of its JSON and that JSON's digest."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) <= limit:
        return value
    return {"excerpt": excerpt(text, limit // 2), **digest(text), "note": "not logged in full"}


def bound_unserved_request(row: dict[str, Any]) -> dict[str, Any]:
    """The ledger row of a request refused for its length, with its texts cut to excerpts when any
    is longer than EXCERPT_CHARS (or there are more than MAX_LOGGED_MESSAGES messages); the row's
    prompt_hash stays the hash of the whole prompt. Returns `row` unchanged when nothing is long."""
    prompt = row.get("prompt") or ""
    system = row.get("system_prompt") or ""
    messages = row.get("messages") or []
    long_message = any(len(str(m.get("content") or "")) > EXCERPT_CHARS for m in messages)
    if max(len(prompt), len(system)) <= EXCERPT_CHARS and not long_message and len(messages) <= MAX_LOGGED_MESSAGES:
        return row
    bounded = dict(row)
    cut: dict[str, Any] = {"excerpt_chars": EXCERPT_CHARS, "prompt": digest(prompt)}
    bounded["prompt_hash"] = row.get("prompt_hash") or content_hash(prompt)
    bounded["prompt"] = excerpt(prompt)
    if system:
        cut["system_prompt"] = digest(system)
        bounded["system_prompt"] = excerpt(system)
    if messages:
        whole = json.dumps(messages, ensure_ascii=False)
        cut["messages"] = {"count": len(messages), **digest(whole)}
        half = MAX_LOGGED_MESSAGES // 2
        kept = messages if len(messages) <= MAX_LOGGED_MESSAGES else messages[:half] + messages[-half:]
        bounded["messages"] = [dict(m, content=excerpt(str(m.get("content") or ""))) for m in kept]
    bounded["meta"] = dict(row.get("meta") or {}, log_excerpt=cut)
    bounded["error"] = f"{row['error']} ({EXCERPT_NOTE})" if row.get("error") else EXCERPT_NOTE
    return bounded
