"""Embeddings for the evaluation scripts, kept between runs in a ledger database of their own (the
product's cache: embed_missing and load_vectors, keyed by normalized text and model), so a second run
of eval_patterns.py or eval_multilingual.py embeds nothing it has seen. One database per back end
(their vectors differ slightly, and the scripts are run with each to compare them), in the system's
temporary folder; delete it to start cold.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.core.audit.embeddings import Encoder, embed_missing, load_vectors, text_key
from app.core.store import open_db

CACHE = Path(tempfile.gettempdir()) / "stillroom-eval-embeddings-{backend}.db"
_DB: dict[str, object] = {}


def cached_encode(encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
    """The normalized vectors of `texts` (one row each), embedding only those not cached yet."""
    backend = getattr(encoder, "backend", None) or encoder.name.replace("/", "_")
    if backend not in _DB:
        _DB[backend] = open_db(Path(str(CACHE).format(backend=backend)))
    db = _DB[backend]
    for _ in embed_missing(db, encoder, texts):
        pass
    return load_vectors(db, [text_key(t) for t in texts], encoder.name)
