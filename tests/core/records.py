"""Generation records for store tests that do not need the model."""

from __future__ import annotations

from typing import Any


def record(i: int, **overrides: Any) -> dict[str, Any]:
    """A complete, plausible generation record number `i`."""
    row: dict[str, Any] = {
        "source": "cli",
        "workflow": "tests",
        "model_sha256": "a" * 64,
        "model_name": "Test Model",
        "mode": "completion",
        "prompt": f"Prompt number {i}: tell me about item {i}",
        "params": {"temperature": 0.7, "top_p": 0.9, "max_tokens": 32, "seed": i},
        "seed": i,
        "logprobs_requested": 0,
        "response": f"Response number {i} about item {i}.",
        "finish_reason": "stop",
        "prompt_tokens": 12,
        "completion_tokens": 8,
        "ttft_ms": 12.5,
        "duration_ms": 120.25,
        "tokens_per_s": 66.6,
        "status": "ok",
    }
    row.update(overrides)
    return row
