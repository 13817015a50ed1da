"""sha256 of a file's bytes, read in blocks: the one file hasher behind model registration, imports,
provenance matching and verification (each wraps OSError in its own error)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from app.core.cancel import NEVER, CancelToken

HASH_BLOCK = 4 * 1024 * 1024


def sha256_file(path: Path | str, cancel: CancelToken = NEVER) -> str:
    """sha256 hex of the file's bytes. Raises OSError when it cannot be read, and returns "" if
    `cancel` was cancelled before the end (checked between blocks)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(HASH_BLOCK):
            if cancel.cancelled:
                return ""
            digest.update(block)
    return digest.hexdigest()
