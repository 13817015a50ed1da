"""llama-cpp-python's process-wide set-up, used by the runner (the only loader): its version and GPU
support, its log lines routed to Python logging, the model parameters it cannot take as arguments,
and a Llama that counts what it samples."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def llama_cpp_version() -> str:
    """The installed llama-cpp-python version."""
    import llama_cpp

    return str(llama_cpp.__version__)


def gpu_offload_supported() -> bool:
    """Whether this llama.cpp build can offload layers to a GPU."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def _close_null_files_at_exit() -> None:
    """llama-cpp-python opens os.devnull twice when imported and never closes it, so the interpreter
    warns about unclosed files as it exits; close them at exit instead (nothing writes to them then)."""
    import atexit

    from llama_cpp import _utils

    def close() -> None:
        for name in ("outnull_file", "errnull_file"):
            handle = getattr(_utils, name, None)
            if handle is not None and not handle.closed:
                handle.close()

    atexit.register(close)


_log_callback: Any = None
LLAMA_LOG = logging.getLogger("stillroom.llama_cpp")
_GGML_LOG_LEVEL_ERROR = 4  # ggml: 0 none, 1 debug, 2 info, 3 warn, 4 error, 5 cont


def _route_llama_logs() -> None:
    """Send llama.cpp's own log lines to Python logging (debug, errors as warnings), not stderr."""
    global _log_callback
    if _log_callback is not None:
        return
    import ctypes

    import llama_cpp

    _close_null_files_at_exit()

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        message = text.decode("utf-8", errors="replace").rstrip()
        if message:
            LLAMA_LOG.log(logging.WARNING if level == _GGML_LOG_LEVEL_ERROR else logging.DEBUG, message)

    _log_callback = callback  # keep a reference: llama.cpp holds only the C pointer
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


@contextmanager
def model_params(*, use_extra_bufts: bool) -> Iterator[None]:
    """Load with llama.cpp's extra buffer types on or off: llama-cpp-python's Llama() has no argument
    for it, so its default model parameters are adjusted while the runner (the only loader) loads."""
    import llama_cpp.llama_cpp as lib

    original = lib.llama_model_default_params

    def params() -> Any:
        values = original()
        values.use_extra_bufts = use_extra_bufts
        return values

    lib.llama_model_default_params = params
    try:
        yield
    finally:
        lib.llama_model_default_params = original


def counting_llama_class() -> type:
    """A Llama subclass that counts the tokens it samples, so streamed runs know exact counts."""
    from llama_cpp import Llama

    _route_llama_logs()

    class CountingLlama(Llama):  # type: ignore[misc, valid-type]
        sampled = 0
        last_token = -1

        def generate(self, *args: Any, **kwargs: Any) -> Iterator[int]:
            for token in super().generate(*args, **kwargs):
                self.sampled += 1
                self.last_token = token
                yield token

    return CountingLlama


def continuation_logprobs(llm: Any, prompt: list[int], continuation: list[int]) -> tuple[Any, Any]:
    """Each continuation token's log probability after the prompt and what came before it, and the
    entropy (nats) of the model's distribution there: one decode of prompt + continuation in which
    only the positions that predict a continuation token produce logits (llama-cpp-python's eval
    would ask for every position's, and its Llama for a context-sized logits buffer). Leaves the
    context empty, so the next generation starts from nothing."""
    import llama_cpp
    import numpy as np

    tokens = prompt + continuation
    first = len(prompt) - 1  # the position whose logits predict the first continuation token
    batch = llm._batch
    llm._ctx.kv_cache_clear()
    llm.n_tokens = 0
    batch.set_batch(batch=tokens, n_past=0, logits_all=False)
    batch.batch.logits[len(tokens) - 1] = False
    for position in range(first, len(tokens) - 1):
        batch.batch.logits[position] = True
    try:
        llm._ctx.decode(batch)
        n_vocab = llm.n_vocab()
        logits = np.stack([np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, position),
                                                 shape=(n_vocab,)) for position in range(first, len(tokens) - 1)])
    finally:
        llm._ctx.kv_cache_clear()
    top = logits.max(axis=1, keepdims=True)
    shifted = logits - top
    log_total = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - log_total
    picked = log_probs[np.arange(len(continuation)), continuation]
    entropy = -(np.exp(log_probs) * log_probs).sum(axis=1)
    return picked.astype(np.float64), entropy.astype(np.float64)
