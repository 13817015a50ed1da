"""The ONNX files of a bundled sentence-transformers model that the fast embedding back end runs.

Made on this machine from the packaged weights (nothing is downloaded), once, and kept in the data
folder under a name that holds the source weights' sha256 and the export settings, so a new model
package or new settings make a new file and never reuse a stale one. The graph includes the pooling
and the L2 normalisation, so it returns the same sentence vectors as sentence-transformers.

Two files per model: the float32 export (what a GPU runs) and its int8 form (what the CPU runs):
ONNX Runtime's dynamic quantisation of the weight matrices, per output channel, leaving in float32
the attention's activation products and the feed-forward output projections, whose inputs (after
GELU) are the ones int8 rounds worst; docs/audit.md has the measurements behind that choice.

A manifest beside each file records its sha256; the file is checked against it before every load,
so a damaged file is made again instead of giving wrong vectors. Both are written atomically
(app.core.outfiles), so a process killed half-way leaves no half-written model.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.outfiles import replace_file
from app.core.paths import data_dir
from app.core.privacy import PRIVATE_DIR_MODE

EXPORT_SUBDIR = "embeddings"
WEIGHTS_FILE = "model.safetensors"
OPSET = 17
# Bump when the graph or how it is made changes: the file names change with it.
EXPORT_VERSION = 2
SETTINGS = f"onnx-opset{OPSET}-pool-l2-v{EXPORT_VERSION}"
FLOAT32, INT8 = "fp32", "int8"
HASH_CHUNK = 1 << 20
POOLING_MODES = ("mean", "cls")
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


def pooling_mode(model_dir: Path) -> str:
    """How the sentence-transformers model in `model_dir` pools token vectors: mean or cls.

    Raises ValueError for a model the export cannot reproduce (another pooling, extra modules), so
    that the caller falls back to sentence-transformers itself."""
    modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    kinds = [module["type"].rsplit(".", 1)[-1] for module in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise ValueError(f"cannot export a sentence-transformers pipeline of {', '.join(kinds)}")
    pooling = json.loads((model_dir / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
    chosen = [mode for mode in POOLING_MODES if pooling.get(f"pooling_mode_{mode}_token" + ("s" * (mode == "mean")))]
    others = [key for key, value in pooling.items() if key.startswith("pooling_mode_") and value]
    if len(chosen) != 1 or len(others) != 1:
        raise ValueError(f"cannot export the pooling {', '.join(others) or 'none'}")
    return chosen[0]


def export_path(model_dir: Path, folder: Path | None = None, precision: str = INT8) -> Path:
    """Where the export of the model in `model_dir` is kept: named by its weights' hash, its pooling,
    SETTINGS and the precision (fp32 or int8). Raises ValueError for a model it cannot export."""
    folder = folder or data_dir() / EXPORT_SUBDIR
    mode = pooling_mode(model_dir)
    source = file_sha256(model_dir / WEIGHTS_FILE)
    return folder / f"st-{source[:16]}-{mode}-{SETTINGS}-{precision}.onnx"


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


def _write(path: Path, data: bytes, model_dir: Path, precision: str) -> ExportedModel:
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    with replace_file(path, binary=True) as handle:
        handle.write(data)
    digest = hashlib.sha256(data).hexdigest()
    with replace_file(_manifest_path(path)) as handle:
        json.dump({"sha256": digest, "source_sha256": file_sha256(model_dir / WEIGHTS_FILE), "settings": SETTINGS,
                   "precision": precision}, handle)
    return ExportedModel(path, digest)


def make_export(model_dir: Path, path: Path) -> ExportedModel:
    """Export the sentence-transformers model in `model_dir` to float32 ONNX at `path` (with its
    manifest).

    Runs on the caller's thread and takes a few seconds (torch is imported here, and only here, on
    the fast path). Uses torch's TorchScript exporter (with the onnx package): it writes one
    self-contained file, the same bytes on every run, so two processes exporting at once write the
    same file. Its deprecation notice is silenced: EXPORT_VERSION pins what is made, and the file is
    checked by its sha256 before each use."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    mode = pooling_mode(model_dir)
    transformers_logging.disable_progress_bar()
    encoder = AutoModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager").eval()
    graph = _pooled(encoder, mode)
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
    return _write(path, buffer.getvalue(), model_dir, FLOAT32)


def float_matmuls(model: Any) -> list[str]:
    """The MatMul nodes of an exported graph that quantisation leaves in float32: the attention's
    two products of activations (query x key, weights x value) and each layer's feed-forward output
    projection."""
    names = [node.name for node in model.graph.node if node.op_type == "MatMul"]
    return [name for name in names if name.endswith(("self/MatMul", "self/MatMul_1"))
            or (name.endswith("/output/dense/MatMul") and "/attention/" not in name)]


def make_quantized(model_dir: Path, source: ExportedModel, path: Path) -> ExportedModel:
    """The int8 form of the float32 export `source`, written at `path` with its manifest (about
    three seconds; the same bytes on every run)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source.path))
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        out = Path(scratch) / "quantized.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(model, out, per_channel=True, weight_type=QuantType.QInt8,
                             nodes_to_exclude=float_matmuls(model))
        data = out.read_bytes()
    return _write(path, data, model_dir, INT8)


def discard_export(path: Path) -> None:
    """Remove an export and its manifest (a damaged one, before making it again)."""
    for item in (path, _manifest_path(path)):
        try:
            os.unlink(item)
        except FileNotFoundError:
            pass


def _pooled(encoder, mode: str):  # noqa: ANN001, ANN202
    """The transformer, then the pooling (attention-masked mean or the first token), then L2
    normalisation: a sentence-transformers pipeline as one traceable module."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN202
            tokens = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state
            if mode == "cls":
                pooled = tokens[:, 0]
            else:
                weights = attention_mask.unsqueeze(-1).to(tokens.dtype)
                pooled = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    return Pooled().eval()
