"""Which registered model a server request gets: the catalog /v1/models lists and the names a
client may use for each model.

A model answers to its file's stem (the id /v1/models reports), its file name, its GGUF name, its
sha256 and the sha256's first 12 hex digits. 'default' is the bundled chat model on the chat
endpoint and the bundled completion model (Gemma 3 270M) on the completions endpoint; 'chat' is
the bundled chat model on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from app.core.models.bundled import BUNDLED, CHAT_ROLE, COMPLETION_ROLE, bundled_for_file
from app.core.models.chat_model import CHAT_ALIAS
from app.core.models.default_model import DEFAULT_ALIAS
from app.core.models.registry import list_models

CHAT_ENDPOINT = "chat"


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
    role: str | None  # CHAT_ROLE or COMPLETION_ROLE for a bundled model, else None

    def names(self) -> set[str]:
        """Every name a request may give for this model."""
        return {self.id, self.file_name, self.name, self.sha256, self.sha256[:12]}

    def as_openai(self, created: int) -> dict[str, Any]:
        """The model as an entry of /v1/models."""
        return {"id": self.id, "object": "model", "created": created, "owned_by": "local",
                "stillroom": {"sha256": self.sha256, "name": self.name, "architecture": self.architecture,
                              "quantization": self.quantization, "context_length": self.context_length,
                              "license": self.license, "default_for": self.role}}


def load_catalog(db: Database) -> list[ServedModel]:
    """The registered models whose files are present: the bundled ones first (chat, completion),
    then the others, newest first."""
    order = {model.file_name: index for index, model in enumerate(BUNDLED)}
    models = []
    for row in list_models(db):
        if not row["present"]:
            continue
        bundled = bundled_for_file(row["file_name"])
        models.append(ServedModel(
            id=Path(row["path"]).stem, sha256=row["sha256"], name=row["name"] or row["file_name"],
            file_name=row["file_name"], architecture=row["architecture"], quantization=row["quantization"],
            context_length=row["context_length"], license=row["license"], role=bundled.role if bundled else None))
    return sorted(models, key=lambda m: order.get(m.file_name, len(order)))


def pick_model(catalog: list[ServedModel], requested: str, endpoint: str) -> ServedModel | None:
    """The model a request naming `requested` on `endpoint` ('chat' or 'completions') gets, or None."""
    role = None
    if requested == CHAT_ALIAS:
        role = CHAT_ROLE
    elif requested == DEFAULT_ALIAS:
        role = CHAT_ROLE if endpoint == CHAT_ENDPOINT else COMPLETION_ROLE
    if role is not None:
        return next((model for model in catalog if model.role == role), None)
    return next((model for model in catalog if requested in model.names()), None)
