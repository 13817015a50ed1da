"""Bad and unusual GGUF files, made for the tests with the real `gguf` writer."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from gguf import GGUFWriter


def write_huge_sparse_gguf(path: Path, tensor_bytes: int) -> Path:
    """A valid GGUF header declaring one huge F32 tensor; the data is a sparse hole (no disk used)."""
    writer = GGUFWriter(str(path), "llama")
    writer.add_name("Enormous Test Model")
    writer.add_context_length(4096)
    writer.add_block_count(80)
    writer.add_embedding_length(8192)
    writer.add_head_count_kv(8)
    elements = tensor_bytes // 4
    writer.add_tensor_info("blk.0.ffn_up.weight", [8192, elements // 8192], np.dtype(np.float32), elements * 4)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    size = path.stat().st_size
    alignment = 32
    data_start = (size + alignment - 1) // alignment * alignment
    os.truncate(path, data_start + elements * 4)
    return path


def write_truncated(source: Path, path: Path, keep_bytes: int) -> Path:
    """The first `keep_bytes` of a real GGUF."""
    with source.open("rb") as handle:
        path.write_bytes(handle.read(keep_bytes))
    return path


def write_corrupt_header(source: Path, path: Path) -> Path:
    """A real GGUF whose metadata section has been overwritten with garbage."""
    with source.open("rb") as handle:
        head = bytearray(handle.read(64 * 1024))
    head[24:4096] = os.urandom(4096 - 24)
    path.write_bytes(bytes(head))
    return path
