"""EncoderHost: the bundled sentence encoder behind /v1/embeddings, and the ledger rows it writes.

The encoder is the audit's all-MiniLM-L6-v2 (app.core.audit.embeddings), run on the CPU by ONNX
Runtime over the float32 export (or sentence-transformers, the fallback), not by llama.cpp, so it does
not queue behind generations on the model thread. The host uses the process's one serving Encoder
(float32: a text's vector does not depend on the rest of the request; loaded on the first request,
then kept) and appends
its rows through a ledger connection of its own; requests take turns on both.
"""

from __future__ import annotations

import threading
from importlib.metadata import version
from pathlib import Path

from app.core.audit.embeddings import serving_encoder
from app.core.embedding import EmbeddingRequest, EmbeddingResult, LoggedEmbedding, embed_logged
from app.core.errors import ContextLengthError
from app.core.generation import LogContext
from app.core.store import Ledger


class EncoderHost:
    """Embeds with the shared Encoder and logs each request as one row (any HTTP thread)."""

    def __init__(self, ledger_path: Path) -> None:
        self._ledger_path = ledger_path
        self._ledger: Ledger | None = None
        self._lock = threading.Lock()

    def embed(self, request: EmbeddingRequest, context: LogContext, model_sha256: str,
              model_name: str) -> LoggedEmbedding:
        """The vectors for `request`, logged; raises ContextLengthError (logged as an error row)
        for a text longer than the encoder reads, LedgerError when the row cannot be written."""
        with self._lock:
            if self._ledger is None:
                self._ledger = Ledger.open(self._ledger_path)
            return embed_logged(lambda texts: _encode(texts, model_sha256, model_name), self._ledger, request,
                                context, model_sha256=model_sha256, model_name=model_name)

    def close(self) -> None:
        """Close the ledger connection (the shared encoder stays loaded for the process)."""
        with self._lock:
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None


def _encode(texts: list[str], model_sha256: str, model_name: str) -> EmbeddingResult:
    """Encode whole texts only: sentence-transformers would silently cut a longer one."""
    encoder = serving_encoder()
    counts = encoder.token_counts(texts)
    limit = encoder.max_tokens()
    for index, count in enumerate(counts):
        if count > limit:
            raise ContextLengthError(f"input[{index}] is {count} tokens long; {model_name} reads at most {limit} "
                                     "tokens of a text (split it into shorter passages)")
    runtime = {"sentence_transformers": version("sentence-transformers"), "torch": version("torch"),
               "device": "cpu"}
    return EmbeddingResult(encoder.encode(texts), sum(counts), model_sha256, model_name, runtime)
