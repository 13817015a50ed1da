"""Normalized content hashes of prompts and responses, used to match datasets to the ledger.

Normalization `norm-v1`: Unicode NFKC, line endings unified, runs of white space folded to one
space, leading and trailing white space removed. Case and punctuation are kept: edits of those are
the near-duplicate matcher's job, not the exact hash's.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

NORMALIZATION = "norm-v1"
_WHITESPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Return `text` in the canonical form that content hashes are computed over."""
    text = unicodedata.normalize("NFKC", text)
    return _WHITESPACE.sub(" ", text).strip()


def content_hash(text: str | None) -> str | None:
    """sha256 hex of the normalized text, or None for None."""
    if text is None:
        return None
    return hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()
