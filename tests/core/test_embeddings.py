"""Real all-MiniLM-L6-v2 embeddings, offline, cached by content hash: nothing is embedded twice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.core.audit.embeddings import DIM, Encoder, cached_keys, embed_missing, load_vectors, text_key
from app.core.store import Ledger


@pytest.fixture(scope="session")
def encoder(embedding_store: Path) -> Encoder:
    return Encoder(export_dir=embedding_store)


def test_vectors_are_normalized_and_meaningful(encoder: Encoder) -> None:
    vectors = encoder.encode(["How do I bake bread?", "What is a good bread recipe?", "Rate this answer from 1 to 10."])
    assert vectors.shape == (3, DIM) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_cache_embeds_each_text_once(ledger: Ledger, encoder: Encoder) -> None:
    texts = ["Explain photosynthesis step by step.", "explain  photosynthesis step by step.  ", "Tell a joke."]
    first = list(embed_missing(ledger.db, encoder, texts))
    # The first two normalize to different texts (case is kept), whitespace alone does not matter.
    assert first[0].texts == 3 and first[0].total == 3 and first[-1].done == 3
    again = list(embed_missing(ledger.db, encoder, texts + ["Explain photosynthesis step by step."]))
    assert again[0].total == 0 and again[-1].done == 0
    more = list(embed_missing(ledger.db, encoder, texts + ["A new prompt."]))
    assert more[0].total == 1 and more[-1].done == 1
    keys = [text_key(t) for t in texts]
    assert cached_keys(ledger.db, keys) == set(keys)
    stored = load_vectors(ledger.db, keys)
    assert np.allclose(stored, encoder.encode([" ".join(t.split()) for t in texts]), atol=1e-5)
