"""Where a style model's labelled texts come from.

- a labelled file (any dataset the provenance reader reads; the label in a field the user names):
  the response of each row, labelled by that field's value as written;
- the ledger: every successful chat or completion generation's response, labelled by its model's
  family (the registered model's name for its sha256, else the name the row carries, which is how
  imported logs such as simonw/llm's logs.db or OpenAI batch output name their models).

A family name drops the size and what follows it ("SmolLM2 135M Instruct" -> "smollm2",
"Llama-3.1-8B-Instruct" -> "llama-3.1"): sizes within a family are hard to tell apart by style.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

from app.core.cancel import NEVER, CancelToken
from app.core.progress import Progress
from app.core.provenance.dataset import DatasetError, DatasetRow, RowReader, detect_shape, file_sha256
from app.core.screen.attribution import AttributionError, TrainingSet, dataset_hash

_SIZE = re.compile(r"[-_ .]*\d+(?:\.\d+)?\s?[mbk]\b.*$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s_]+")
MAX_LABEL_CHARS = 80
MAX_TRAINING_ROWS = 200_000
PROGRESS_EVERY = 2000


@dataclass
class LabelledTexts:
    """Texts, their labels, and the training set they form."""

    texts: list[str]
    labels: list[str]
    training_set: TrainingSet
    skipped: int = 0  # rows without a label or a response
    prompts: list[str] = field(default_factory=list)  # each text's prompt ('' where there is none)


def family_name(name: str | None) -> str:
    """A model name's family: lower-cased, .gguf dropped, cut before the size ("" for no name)."""
    text = (name or "").strip().lower()
    text = text[:-5] if text.endswith(".gguf") else text
    text = _SEPARATORS.sub("-", _SIZE.sub("", text)).strip("-. ")
    return text[:MAX_LABEL_CHARS]


def _label(value: object) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return " ".join(str(value).split())[:MAX_LABEL_CHARS]


def labelled_file(path: Path | str, label_field: str, fields: dict[str, str] | None = None,
                  cancel: CancelToken = NEVER) -> Generator[Progress, None, LabelledTexts | None]:
    """Read a labelled dataset file: each row's response, labelled by `label_field`. Yields
    Progress; returns None if cancelled. DatasetError when the field is not in the file or no row
    has both a label and a response."""
    path = Path(path)
    shape = detect_shape(path, fields)
    if label_field not in shape.columns:
        raise DatasetError(f"{path}: no field {label_field!r} (the file has: {', '.join(shape.columns)})")
    reader = RowReader(path, shape, extra_fields=(label_field,))
    texts: list[str] = []
    labels: list[str] = []
    prompts: list[str] = []
    skipped = 0
    for item in reader:
        if cancel.cancelled:
            return None
        if isinstance(item, DatasetRow):
            label = _label(item.extras.get(label_field))
            if label and item.response.strip():
                texts.append(item.response)
                labels.append(label)
                prompts.append(item.prompt or "")
            else:
                skipped += 1
        else:
            skipped += 1
        if len(texts) >= MAX_TRAINING_ROWS:
            break
        if (len(texts) + skipped) % PROGRESS_EVERY == 0:
            yield Progress("reading", reader.done, reader.total)
    if not texts:
        raise DatasetError(f"{path}: none of its {skipped} rows has both a {label_field!r} label and a response")
    return LabelledTexts(texts, labels, TrainingSet(path.name, file_sha256(path), len(texts)), skipped, prompts)


def ledger_generations(db: Database) -> LabelledTexts:
    """The ledger's successful chat and completion responses, labelled by model family."""
    rows = db.execute(
        "SELECT g.response, coalesce(m.name, g.model_name), coalesce(g.prompt, '') FROM generations g "
        "LEFT JOIN models m ON m.sha256 = g.model_sha256 WHERE g.status = 'ok' AND g.mode IN ('chat', 'completion') "
        "AND g.response IS NOT NULL AND trim(g.response) != '' ORDER BY g.id LIMIT ?", [MAX_TRAINING_ROWS]).fetchall()
    texts, labels, prompts, skipped = [], [], [], 0
    for response, name, prompt in rows:
        family = family_name(name)
        if family:
            texts.append(response)
            labels.append(family)
            prompts.append(prompt)
        else:
            skipped += 1
    if not texts:
        raise AttributionError("the ledger has no successful generations with a model name to learn styles from")
    families = len(set(labels))
    name = f"ledger: {len(texts)} generations of {families} model famil{'y' if families == 1 else 'ies'}"
    return LabelledTexts(texts, labels, TrainingSet(name, dataset_hash(texts, labels), len(texts)), skipped, prompts)
