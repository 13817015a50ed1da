"""Turn a user's model reference (a path, a registered sha256 prefix, 'default', 'chat') into a
registered model record. Apart from the bundled models' module because it serves every model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database

from app.core.models.bundled import bundled_by_alias, register_bundled_model
from app.core.models.default_model import DEFAULT_ALIAS
from app.core.models.gguf_info import GGUFInfo
from app.core.models.registry import ModelRecord, find_model, register_model


def resolve_model(db: Database, ref: str | None,
                  precheck: Callable[[GGUFInfo], None] | None = None) -> ModelRecord:
    """Register and return the model named by `ref`: a path, a registered sha256 prefix, 'chat'
    for the bundled chat model, or 'default'/None for the default (completion) model. `precheck`
    is passed to register_model."""
    bundled = bundled_by_alias(DEFAULT_ALIAS if ref is None else ref)
    if bundled is not None:
        return register_bundled_model(db, bundled, precheck)
    path = Path(ref).expanduser()
    if not path.exists() and _looks_like_sha(ref):
        path = Path(find_model(db, ref)["path"])
    return register_model(db, path, precheck)


def _looks_like_sha(ref: str) -> bool:
    return len(ref) >= 6 and all(c in "0123456789abcdefABCDEF" for c in ref)
