"""Per-generation flags and workflow-level signals (see resources/patterns/README.md for their
definitions): volume, busiest-hour rate, template reuse, semantic diversity, and the shares of
reasoning, grading, logprob, max_tokens=1, tool-use and refused requests, and how many requests
carried tools and how many answers called one (from the ledger's meta.tools, which the server writes
for every request with tools, and from imported tool messages).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from app.core.audit.language import detect_language
from app.core.audit.patterns import PatternLibrary
from app.core.audit.templates import GridEvidence

SIGNATURE_WORDS = 8
MIN_WORDS_FOR_SIGNATURE = 10
DIVERSITY_SAMPLE = 1000
FLAG_REASONING, FLAG_GRADING, FLAG_LOGPROB, FLAG_MAX1, FLAG_TOOL, FLAG_REFUSAL = 1, 2, 4, 8, 16, 32
FLAG_TOOL_CALL = 64  # the answer called a tool
# The flag of each signal that counts generations on which prompt cues fire; which patterns' cues
# feed it is said by the patterns themselves (`feeds_signals`), so the names are those of CUE_FED_SIGNALS.
CUE_FLAGS = {"reasoning_share": FLAG_REASONING, "grading_share": FLAG_GRADING}
_SLOT = re.compile(r"\"[^\"]*\"|'[^']*'|“[^”]*”|\[[^\]]*\]|\{[^}]*\}|<[^>]*>|\d+(?:[.,]\d+)*")
_WORD = re.compile(r"\w+", re.UNICODE)
_REFUSAL = re.compile(
    r"\b(I (?:can(?:no|')t|am not able to|won't|will not|must decline to) (?:help|assist|provide|do|answer|comply)"
    r"|I'?m (?:sorry|afraid),? (?:but )?I (?:can(?:no|')t|won't)|as an AI,? I (?:can(?:no|')t|am unable))",
    re.IGNORECASE)


def request_params(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ledger row's request in the parameter names the pattern cues use."""
    params = row.get("params") or {}
    meta = row.get("meta") or {}
    extras = ((meta.get("server") or {}).get("extras") or {}) if isinstance(meta, dict) else {}
    top = params.get("logprobs")
    result: dict[str, Any] = {
        "logprobs": bool(row.get("logprobs_requested")),
        "top_logprobs": top if isinstance(top, int) and top > 0 else None,
        "max_tokens": params.get("max_tokens"), "temperature": params.get("temperature"),
        "top_p": params.get("top_p"), "top_k": params.get("top_k"), "seed": params.get("seed"),
        "stop": params.get("stop") or None, "response_format": params.get("response_format"),
        "n": (meta.get("server") or {}).get("n") if isinstance(meta, dict) else None,
    }
    for key in ("tools", "tool_choice", "functions", "logit_bias", "echo"):
        if key in extras:
            result[key] = extras[key]
    tools = _tool_meta(row)
    if tools.get("offered"):
        result["tools"] = tools.get("names") or True
        result["tool_choice"] = tools.get("choice")
    return result


def _tool_meta(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row's meta.tools (see app.core.generation.tool_meta), or {}."""
    meta = row.get("meta")
    tools = meta.get("tools") if isinstance(meta, dict) else None
    return tools if isinstance(tools, dict) else {}


def audit_text(row: Mapping[str, Any]) -> str:
    """The text a generation is judged by: its system prompt and its prompt."""
    system = row.get("system_prompt") or ""
    prompt = row.get("prompt") or ""
    return f"{system}\n\n{prompt}" if system else prompt


def generation_flags(library: PatternLibrary, row: Mapping[str, Any], text: str, params: Mapping[str, Any],
                     language: str | None = None) -> int:
    """Bit flags for the share signals of one generation (`language`: the text's, when already detected)."""
    flags = 0
    language = language or detect_language(text)
    for signal, flag in CUE_FLAGS.items():
        if any(cue.matches(text, language) for pattern in library.feeding(signal) for cue in pattern.prompt_cues):
            flags |= flag
    if params.get("logprobs") or (params.get("top_logprobs") or 0) > 0:
        flags |= FLAG_LOGPROB
    if params.get("max_tokens") == 1:
        flags |= FLAG_MAX1
    messages = row.get("messages") or []
    if params.get("tools") or params.get("functions") or any(
            isinstance(m, dict) and (m.get("role") == "tool" or m.get("tool_calls")) for m in messages):
        flags |= FLAG_TOOL
    if _tool_meta(row).get("calls"):
        flags |= FLAG_TOOL_CALL
    if _REFUSAL.search(row.get("response") or ""):
        flags |= FLAG_REFUSAL
    return flags


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def template_signatures(prompt: str) -> tuple[str, str | None, str | None]:
    """The prompt's skeleton (slots masked) and its first/last-words signatures (long prompts only)."""
    skeleton = " ".join(_SLOT.sub("\u2022", prompt.lower()).split())
    words = _WORD.findall(prompt.lower())
    if len(words) < MIN_WORDS_FOR_SIGNATURE:
        return _digest(skeleton), None, None
    return (_digest(skeleton), _digest(" ".join(words[:SIGNATURE_WORDS])),
            _digest(" ".join(words[-SIGNATURE_WORDS:])))


def template_reuse_share(skeletons: Sequence[str], prefixes: Sequence[str | None],
                         suffixes: Sequence[str | None]) -> float:
    """Share of prompts that share their skeleton, or their first or last words, with another."""
    if not skeletons:
        return 0.0
    counts = [Counter(values) for values in (skeletons, prefixes, suffixes)]
    reused = sum(1 for i in range(len(skeletons))
                 if counts[0][skeletons[i]] > 1
                 or (prefixes[i] is not None and counts[1][prefixes[i]] > 1)
                 or (suffixes[i] is not None and counts[2][suffixes[i]] > 1))
    return reused / len(skeletons)


def busiest_hour(times: Sequence[str]) -> int:
    """Most generations in any 60-minute window."""
    stamps = sorted(datetime.fromisoformat(t).timestamp() for t in times if t)
    best, left = 0, 0
    for right, stamp in enumerate(stamps):
        while stamp - stamps[left] > 3600:
            left += 1
        best = max(best, right - left + 1)
    return best


def semantic_diversity(vectors: np.ndarray, seed: int = 0) -> float | None:
    """1 - mean pairwise cosine similarity (on a sample of at most DIVERSITY_SAMPLE vectors)."""
    if len(vectors) < 2:
        return None
    if len(vectors) > DIVERSITY_SAMPLE:
        vectors = vectors[np.random.default_rng(seed).choice(len(vectors), DIVERSITY_SAMPLE, replace=False)]
    # the sum of all pairwise dot products is |sum of vectors|^2: no n x n matrix needed
    n = len(vectors)
    total = vectors.astype(np.float64).sum(axis=0)
    mean = (float(total @ total) - float(np.einsum("ij,ij->", vectors, vectors, dtype=np.float64))) / (n * (n - 1))
    return float(1.0 - mean)


@dataclass
class WorkflowSignals:
    """The statistics of one workflow that the workflow cues compare against."""

    volume: int
    rate_per_hour: int
    active_span_hours: float
    first: str | None
    last: str | None
    template_reuse_share: float
    semantic_diversity: float | None
    reasoning_share: float
    grading_share: float
    logprob_share: float
    max_tokens_1_share: float
    tool_share: float
    refusal_share: float
    tool_requests: int  # requests that carried tools, tool calls or tool results
    tool_call_answers: int  # answers that called a tool
    # template induction over several wrappers (app/core/audit/templates.py); zero when no grid
    grid_slots: int = 0
    grid_cells: int = 0  # distinct cells of the grid seen (in the sampled prompts)
    grid_size: int = 0  # values of one slot x values of the other
    grid_coverage: float = 0.0
    template_family_share: float = 0.0  # sampled prompts in the grid's family
    grid_values: list[list[str]] | None = None  # a few values of each of the grid's two slots

    def as_dict(self) -> dict[str, Any]:
        """Plain values, rounded for reports."""
        return {key: (round(value, 4) if isinstance(value, float) else value) for key, value in vars(self).items()}


def workflow_signals(times: Sequence[str], flags: Sequence[int], skeletons: Sequence[str],
                     prefixes: Sequence[str | None], suffixes: Sequence[str | None],
                     vectors: np.ndarray, grid: GridEvidence | None = None) -> WorkflowSignals:
    """Compute a workflow's signals from its generations' stored flags, signatures and vectors, and
    the grid that template induction found in its prompts (if any)."""
    n = len(flags)
    ordered = sorted(t for t in times if t)
    span = 0.0
    if len(ordered) > 1:
        span = (datetime.fromisoformat(ordered[-1]) - datetime.fromisoformat(ordered[0])).total_seconds() / 3600

    def share(bit: int) -> float:
        return sum(1 for f in flags if f & bit) / n if n else 0.0

    return WorkflowSignals(
        volume=n, rate_per_hour=busiest_hour(ordered), active_span_hours=span,
        first=ordered[0] if ordered else None, last=ordered[-1] if ordered else None,
        template_reuse_share=template_reuse_share(skeletons, prefixes, suffixes),
        semantic_diversity=semantic_diversity(vectors), reasoning_share=share(FLAG_REASONING),
        grading_share=share(FLAG_GRADING), logprob_share=share(FLAG_LOGPROB), max_tokens_1_share=share(FLAG_MAX1),
        tool_share=share(FLAG_TOOL), refusal_share=share(FLAG_REFUSAL),
        tool_requests=sum(1 for f in flags if f & FLAG_TOOL), tool_call_answers=sum(1 for f in flags if f & FLAG_TOOL_CALL),
        **_grid_fields(grid))


def _grid_fields(grid: GridEvidence | None) -> dict[str, Any]:
    if grid is None or grid.slots < 2:
        return {}
    return {"grid_slots": grid.slots, "grid_cells": grid.covered, "grid_size": grid.cells,
            "grid_coverage": grid.coverage, "template_family_share": grid.family_share, "grid_values": grid.values}
