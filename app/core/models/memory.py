"""How much memory a model needs, and how much this machine has free, checked before loading."""

from __future__ import annotations

import os
from pathlib import Path

from app.core.errors import ModelFileError
from app.core.models.gguf_info import GGUFInfo

OVERHEAD_BYTES = 150 * 1024**2  # compute buffers and the runtime itself
KV_BYTES_PER_VALUE = 2  # f16 cache
BATCH_TOKENS = 512  # llama.cpp keeps float32 logits for a batch of this many tokens
GIB = 1024**3


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo where there is one, else free physical pages."""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def estimate_bytes(info: GGUFInfo, n_ctx: int, n_gpu_layers: int) -> int:
    """Bytes of host memory a load needs: the weights kept on the CPU, the KV cache, overhead."""
    layers = info.block_count or 0
    on_gpu = 0.0
    if n_gpu_layers and layers:
        on_gpu = 1.0 if n_gpu_layers < 0 else min(1.0, n_gpu_layers / (layers + 1))
    weights = int(info.tensor_bytes * (1.0 - on_gpu))
    kv_width = (info.head_count_kv or 1) * ((info.key_length or 128) + (info.value_length or 128))
    kv_cache = int(n_ctx * layers * kv_width * KV_BYTES_PER_VALUE * (1.0 - on_gpu))
    logits = BATCH_TOKENS * (info.vocab_size or 32_000) * 4
    return weights + kv_cache + logits + OVERHEAD_BYTES


def check_fits(info: GGUFInfo, n_ctx: int, n_gpu_layers: int, available: int | None = None) -> None:
    """ModelFileError naming the file when the load would not fit in available memory."""
    free = available_memory_bytes() if available is None else available
    if free is None:
        return
    need = estimate_bytes(info, n_ctx, n_gpu_layers)
    if need > free:
        raise ModelFileError(
            f"{info.path}: the model is too large for this machine's memory: loading it with a "
            f"{n_ctx}-token context needs about {need / GIB:.1f} GiB, and {free / GIB:.1f} GiB is free. "
            "Choose a smaller quantization, a shorter context, or offload layers to a GPU (n_gpu_layers)."
        )
