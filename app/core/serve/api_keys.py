"""API keys for the local server. Each key carries the workflow its requests are logged under.

Only the sha256 of a key is stored; the key itself is shown once, when it is created.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlite_utils import Database

from app.core.errors import NotFoundError
from app.core.store.db import translate_errors
from app.core.store.events import record_event
from app.core.store.ledger import utc_now

KEY_PREFIX = "sk-stillroom-"
KEY_BYTES = 24


@dataclass(frozen=True)
class ApiKey:
    """A stored key (without the secret)."""

    id: int
    name: str
    prefix: str
    workflow: str
    created_at: str
    revoked_at: str | None


MAX_KEY_NAME_CHARS = 200


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(db: Database, name: str, workflow: str) -> tuple[ApiKey, str]:
    """Create a key for `workflow`; returns the stored record and the secret (shown once)."""
    if not workflow.strip():
        raise ValueError("an API key needs a workflow name")
    from app.core.serve.openai_api import ApiError
    from app.core.serve.request_guard import check_workflow

    try:  # the same rules as a workflow a client names in a header
        workflow = check_workflow(workflow)
    except ApiError as exc:
        raise ValueError(str(exc.message)) from exc
    name = name.strip()
    if len(name) > MAX_KEY_NAME_CHARS or not name.isprintable():
        raise ValueError(f"a key name is printable text of at most {MAX_KEY_NAME_CHARS} characters")
    secret = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    row = {"name": name or workflow, "key_sha256": _digest(secret), "prefix": secret[: len(KEY_PREFIX) + 4],
           "workflow": workflow.strip(), "created_at": utc_now(), "revoked_at": None}
    with translate_errors("api_keys"), db.conn:
        key_id = db["api_keys"].insert(row).last_pk
    record_event(db, "key_created", f"API key {row['name']!r} created for workflow {row['workflow']!r}",
                 {"key_id": key_id, "name": row["name"], "prefix": row["prefix"], "workflow": row["workflow"]})
    return ApiKey(int(key_id), row["name"], row["prefix"], row["workflow"], row["created_at"], None), secret


def lookup_key(db: Database, secret: str) -> ApiKey | None:
    """The live key matching `secret`, or None (unknown or revoked)."""
    found = db.execute(
        "SELECT id, name, prefix, workflow, created_at, revoked_at FROM api_keys "
        "WHERE key_sha256 = ? AND revoked_at IS NULL", [_digest(secret)]).fetchone()
    return ApiKey(*found) if found else None


def list_keys(db: Database) -> list[ApiKey]:
    """All keys, newest first (revoked ones included, marked)."""
    rows = db.execute("SELECT id, name, prefix, workflow, created_at, revoked_at FROM api_keys ORDER BY id DESC")
    return [ApiKey(*values) for values in rows.fetchall()]


def revoke_key(db: Database, key_id: int) -> None:
    """Revoke a key by id; its requests are refused from then on."""
    with translate_errors("api_keys"), db.conn:
        cursor = db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                            [utc_now(), key_id])
    if cursor.rowcount == 0:
        raise NotFoundError(f"no live API key with id {key_id}")
    name, prefix, workflow = db.execute("SELECT name, prefix, workflow FROM api_keys WHERE id = ?",
                                        [key_id]).fetchone()
    record_event(db, "key_revoked", f"API key {name!r} (workflow {workflow!r}) revoked",
                 {"key_id": key_id, "name": name, "prefix": prefix, "workflow": workflow})


def has_live_keys(db: Database) -> bool:
    """True when at least one key can be used."""
    return db.execute("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1").fetchone() is not None
