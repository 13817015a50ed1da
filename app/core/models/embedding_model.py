"""Which GGUF files are embedding models, from their metadata alone.

llama.cpp's converter writes `<architecture>.pooling_type` for every model made to produce one
vector per text (BERT-style encoders, and decoder embedders such as Qwen3-Embedding), and never for
a chat or base model; encoder-only architectures are embedding models whatever their metadata says.
Such a model answers /v1/embeddings and nothing else: it cannot generate text, and a text model's
hidden states are not an embedding anyone trained.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

POOLING_KEY_SUFFIX = ".pooling_type"
ENCODER_ARCHITECTURES = frozenset({
    "bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "neo-bert", "modern-bert",
    "eurobert", "t5encoder", "gemma-embedding",
})


def is_embedding_model(architecture: str | None, metadata: Mapping[str, Any] | None) -> bool:
    """True when a GGUF with this architecture and metadata is an embedding model."""
    if (architecture or "").lower() in ENCODER_ARCHITECTURES:
        return True
    return any(key.endswith(POOLING_KEY_SUFFIX) for key in (metadata or {}))
