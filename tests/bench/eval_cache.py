"""Embeddings for the evaluation scripts, kept between runs in a ledger database of their own (the
product's cache: embed_missing and load_vectors, keyed by normalized text and model), so a second run
of eval_patterns.py or eval_multilingual.py embeds nothing it has seen. The database lives in the
system's temporary folder; delete it to start cold.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.core.audit.embeddings import Encoder, embed_missing, load_vectors, text_key
from app.core.store import open_db

CACHE = Path(tempfile.gettempdir()) / "stillroom-eval-embeddings.db"
_DB = None


def cached_encode(encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
    """The normalized vectors of `texts` (one row each), embedding only those not cached yet."""
    global _DB
    if _DB is None:
        _DB = open_db(CACHE)
    for _ in embed_missing(_DB, encoder, texts):
        pass
    return load_vectors(_DB, [text_key(t) for t in texts], encoder.name)
