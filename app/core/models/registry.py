"""The registry of model files: GGUF metadata and sha256 per file, kept in the ledger database.

A file's sha256 is computed once and cached by (path, size, mtime); the models table holds one
row per distinct file content (sha256), with the metadata the ledger's rows refer to.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from app.core.errors import NotFoundError
from app.core.hashing import sha256_file
from app.core.models.embedding_model import is_embedding_model
from app.core.models.gguf_info import GGUFInfo, read_gguf_info
from app.core.store.db import translate_errors
from app.core.store.events import record_event
from app.core.store.ledger import utc_now



@dataclass(frozen=True)
class ModelRecord:
    """A registered model: the file's sha256 and its GGUF metadata."""

    sha256: str
    info: GGUFInfo

    @property
    def short_sha(self) -> str:
        """The first 12 hex digits of the sha256, for display."""
        return self.sha256[:12]


def cached_sha256(db: Database, path: Path) -> str:
    """The file's sha256, computed once per (path, size, mtime) and cached in model_files."""
    path = path.expanduser().resolve()
    stat = path.stat()
    with translate_errors(path):
        found = db.execute(
            "SELECT sha256 FROM model_files WHERE path = ? AND size_bytes = ? AND mtime_ns = ?",
            [str(path), stat.st_size, stat.st_mtime_ns],
        ).fetchone()
    if found:
        return str(found[0])
    digest = sha256_file(path)
    with translate_errors(path):
        db["model_files"].upsert(
            {"path": str(path), "size_bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns,
             "sha256": digest, "hashed_at": utc_now()},
            pk="path",
        )
    return digest


def register_model(db: Database, path: Path | str,
                   precheck: Callable[[GGUFInfo], None] | None = None) -> ModelRecord:
    """Read a GGUF's metadata, hash it (cached) and record it in the models table.

    `precheck` runs on the metadata before the (possibly long) hash, e.g. a memory check before
    a load. Raises ModelFileError naming the file when it is missing, not a GGUF, truncated or
    corrupt.
    """
    info = read_gguf_info(path)
    if precheck is not None:
        precheck(info)
    digest = cached_sha256(db, Path(info.path))
    row = {
        "sha256": digest,
        "path": info.path,
        "file_name": info.file_name,
        "size_bytes": info.size_bytes,
        "name": info.name,
        "architecture": info.architecture,
        "quantization": info.quantization,
        "size_label": info.size_label,
        "license": info.license,
        "base_model": info.base_model,
        "context_length": info.context_length,
        "has_chat_template": int(info.has_chat_template),
        "chat_template": info.chat_template,
        "metadata": json.dumps(info.metadata, ensure_ascii=False, default=str),
    }
    with translate_errors(info.path):
        existing = db.execute("SELECT added_at FROM models WHERE sha256 = ?", [digest]).fetchone()
        row["added_at"] = existing[0] if existing else utc_now()
        db["models"].upsert(row, pk="sha256")
    if not existing:
        record_event(db, "model_added", f"model {info.name} added ({info.file_name})",
                     {"sha256": digest, "name": info.name, "path": info.path, "size_bytes": info.size_bytes})
    return ModelRecord(digest, info)


def list_models(db: Database) -> list[dict[str, Any]]:
    """All registered models (without the bulky metadata), newest first, with `present` flags."""
    rows = db.execute(
        "SELECT sha256, path, file_name, size_bytes, name, architecture, quantization, size_label, "
        "license, base_model, context_length, has_chat_template, added_at FROM models ORDER BY added_at DESC"
    )
    names = [d[0] for d in rows.description]
    result = []
    for values in rows.fetchall():
        item = dict(zip(names, values))
        item["present"] = Path(item["path"]).exists()
        result.append(item)
    return result


def embedding_models(db: Database) -> dict[str, int | None]:
    """The registered embedding models (see embedding_model): sha256 -> the length of their
    vectors (the GGUF's embedding_length), None where the file does not say."""
    found: dict[str, int | None] = {}
    for sha, architecture, metadata in db.execute("SELECT sha256, architecture, metadata FROM models").fetchall():
        meta = json.loads(metadata or "{}")
        if is_embedding_model(architecture, meta):
            length = meta.get(f"{architecture}.embedding_length")
            found[sha] = int(length) if isinstance(length, int) else None
    return found


def find_model(db: Database, ref: str) -> dict[str, Any]:
    """A registered model by path or by sha256 (a prefix of at least 6 hex digits will do)."""
    candidate = Path(ref).expanduser()
    if candidate.exists():
        rows = db.execute("SELECT * FROM models WHERE path = ?", [str(candidate.resolve())])
    elif len(ref) >= 6:
        rows = db.execute("SELECT * FROM models WHERE sha256 LIKE ?", [ref.lower() + "%"])
    else:
        raise NotFoundError(f"no registered model matches {ref!r} (give a path or at least 6 hex digits)")
    names = [d[0] for d in rows.description]
    found = [dict(zip(names, values)) for values in rows.fetchall()]
    if not found:
        raise NotFoundError(f"no registered model matches {ref!r}; add it with `stillroom models add PATH`")
    if len(found) > 1:
        raise NotFoundError(f"{ref!r} matches {len(found)} models; give more of the sha256")
    model = found[0]
    model["metadata"] = json.loads(model["metadata"] or "{}")
    return model


def remove_model(db: Database, ref: str) -> dict[str, Any]:
    """Forget a registered model (by path or sha256 prefix); its file and the ledger rows that name
    it are kept. Returns the removed record."""
    model = find_model(db, ref)
    with translate_errors("models"), db.conn:
        db.execute("DELETE FROM models WHERE sha256 = ?", [model["sha256"]])
        record_event(db, "model_removed", f"model {model['name']} removed from the registry ({model['file_name']})",
                     {"sha256": model["sha256"], "name": model["name"], "path": model["path"]})
    return model
