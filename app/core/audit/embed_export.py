"""The ONNX file of the bundled all-MiniLM-L6-v2 that the fast embedding back end runs.

Made on this machine from the packaged weights (nothing is downloaded), once, and kept in the data
folder under a name that holds the source weights' sha256 and the export settings, so a new model
package or new settings make a new file and never reuse a stale one. The graph includes the mean
pooling and the L2 normalisation, so it returns the same sentence vectors as sentence-transformers.

A manifest beside the file records its sha256; the file is checked against it before every load, so
a damaged file is made again instead of giving wrong vectors. Both are written atomically
(app.core.outfiles), so a process killed half-way leaves no half-written model.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from app.core.outfiles import replace_file
from app.core.paths import data_dir
from app.core.privacy import PRIVATE_DIR_MODE

EXPORT_SUBDIR = "embeddings"
WEIGHTS_FILE = "model.safetensors"
OPSET = 17
# Bump when the graph or how it is made changes: the file name changes with it.
EXPORT_VERSION = 1
SETTINGS = f"onnx-opset{OPSET}-meanpool-l2-v{EXPORT_VERSION}"
HASH_CHUNK = 1 << 20
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class ExportedModel:
    """An exported ONNX file that matched its manifest: where it is and its sha256."""

    path: Path
    sha256: str


def file_sha256(path: Path) -> str:
    """sha256 hex of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(HASH_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def export_path(model_dir: Path, folder: Path | None = None) -> Path:
    """Where the export of the model in `model_dir` is kept: named by its weights' hash and SETTINGS."""
    folder = folder or data_dir() / EXPORT_SUBDIR
    source = file_sha256(model_dir / WEIGHTS_FILE)
    return folder / f"all-minilm-l6-v2-{source[:16]}-{SETTINGS}.onnx"


def _manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def load_export(path: Path) -> ExportedModel | None:
    """The export at `path` if it exists and matches its manifest's sha256; None otherwise."""
    manifest = _manifest_path(path)
    if not path.exists() or not manifest.exists():
        return None
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8"))["sha256"]
    except (ValueError, KeyError, TypeError):
        return None
    actual = file_sha256(path)
    return ExportedModel(path, actual) if actual == recorded else None


def make_export(model_dir: Path, path: Path) -> ExportedModel:
    """Export the sentence-transformers model in `model_dir` to ONNX at `path` (with its manifest).

    Runs on the caller's thread and takes a few seconds (torch is imported here, and only here, on
    the fast path). Uses torch's TorchScript exporter (with the onnx package): it writes one
    self-contained file, the same bytes on every run, so two processes exporting at once write the
    same file; the newer exporter needs onnxscript and writes the weights beside the graph. Its
    deprecation notice is silenced: EXPORT_VERSION pins what is made, and the file is checked by its
    sha256 before each use."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    encoder = AutoModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager").eval()
    graph = _pooled(encoder)
    sample = torch.ones((2, 8), dtype=torch.long)
    mask = sample.clone()
    mask[1, 5:] = 0  # a padded row, so that the traced graph keeps the mask
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (sample, mask, torch.zeros_like(sample)), buffer, input_names=list(_INPUTS),
                          output_names=["sentence_embedding"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={**{name: {0: "batch", 1: "tokens"} for name in _INPUTS},
                                        "sentence_embedding": {0: "batch"}})
    data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    with replace_file(path, binary=True) as handle:
        handle.write(data)
    digest = hashlib.sha256(data).hexdigest()
    with replace_file(_manifest_path(path)) as handle:
        json.dump({"sha256": digest, "source_sha256": file_sha256(model_dir / WEIGHTS_FILE), "settings": SETTINGS},
                  handle)
    return ExportedModel(path, digest)


def discard_export(path: Path) -> None:
    """Remove an export and its manifest (a damaged one, before making it again)."""
    for item in (path, _manifest_path(path)):
        try:
            os.unlink(item)
        except FileNotFoundError:
            pass


def _pooled(encoder):  # noqa: ANN001, ANN202
    """BERT, then the attention-masked mean of its token vectors, then L2 normalisation: the three
    modules of all-MiniLM-L6-v2's sentence-transformers pipeline as one traceable module."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN202
            tokens = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    return Pooled().eval()
