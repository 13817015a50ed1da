"""Embed and log: an embedding request becomes one ledger row, as a generation does.

The row's mode is 'embedding'. Its prompt is the inputs joined by newlines, with each input's
length in meta.embedding.input_chars so that the list can be split back exactly; there is no
response text, and meta.embedding records how many vectors came back, their dimension and the
sha256 of the vectors (float32, little-endian, one after another), so an answer can be matched
later without keeping it. A failure is logged as an error row before it reaches the caller.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.core.generation import LogContext
from app.core.store.ledger import Ledger, utc_now

EMBEDDING_MODE = "embedding"


@dataclass(frozen=True)
class EmbeddingRequest:
    """Texts to embed, and the request's options as they are to be logged."""

    texts: list[str]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EmbeddingResult:
    """The vectors of one request (rows of float32, L2-normalized) and what made them."""

    vectors: np.ndarray
    prompt_tokens: int
    model_sha256: str | None
    model_name: str | None
    runtime: dict[str, Any]


@dataclass(frozen=True)
class LoggedEmbedding:
    """An embedding request's result and the id of its ledger row."""

    generation_id: int
    result: EmbeddingResult


def vectors_sha256(vectors: np.ndarray) -> str:
    """The sha256 of the vectors as float32 little-endian, row after row."""
    return hashlib.sha256(np.ascontiguousarray(vectors, dtype="<f4").tobytes()).hexdigest()


def embedding_row(request: EmbeddingRequest, context: LogContext, *, model_sha256: str | None,
                  model_name: str | None, started_at: str, duration_ms: float,
                  result: EmbeddingResult | None = None, error: str | None = None) -> dict[str, Any]:
    """The ledger row of an embedding request: ok with `result`, or an error row with `error`."""
    summary: dict[str, Any] = {"input_chars": [len(text) for text in request.texts]}
    if result is not None:
        summary |= {"count": int(result.vectors.shape[0]), "dimensions": int(result.vectors.shape[1]),
                    "vectors_sha256": vectors_sha256(result.vectors)}
    return {
        "started_at": started_at,
        "finished_at": utc_now(),
        "source": context.source,
        "workflow": context.workflow,
        "model_sha256": model_sha256,
        "model_name": model_name,
        "mode": EMBEDDING_MODE,
        "prompt": "\n".join(request.texts),
        "params": request.params,
        "prompt_tokens": result.prompt_tokens if result else 0,
        "completion_tokens": 0,
        "duration_ms": duration_ms,
        "status": "ok" if result is not None else "error",
        "error": error,
        "runtime": result.runtime if result else None,
        "meta": context.meta | {"embedding": summary},
    }


def embed_logged(embed: Callable[[list[str]], EmbeddingResult], ledger: Ledger, request: EmbeddingRequest,
                 context: LogContext, *, model_sha256: str | None, model_name: str | None) -> LoggedEmbedding:
    """Run `embed` on the request's texts and append its row (an error row if it raises, then
    re-raise). Runs on the thread that owns the embedding model."""
    started_at, start = utc_now(), time.perf_counter()
    try:
        result = embed(request.texts)
    except Exception as exc:
        ledger.append(embedding_row(request, context, model_sha256=model_sha256, model_name=model_name,
                                    started_at=started_at, duration_ms=(time.perf_counter() - start) * 1000,
                                    error=f"{type(exc).__name__}: {exc}"))
        raise
    row = embedding_row(request, context, model_sha256=result.model_sha256, model_name=result.model_name,
                        started_at=started_at, duration_ms=(time.perf_counter() - start) * 1000, result=result)
    return LoggedEmbedding(ledger.append(row), result)
