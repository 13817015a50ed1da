"""From per-generation scores and workflow signals to a level per pattern, with reasons in plain
language and the benign look-alikes named.

Rules (documented in docs/audit.md):
- a generation "resembles" a pattern when its score is at least 0.5 (a hit);
- high: at least 10 hits making up half the workflow or more, with workflow cues (weight >= 0.3)
  agreeing; or workflow cues of weight >= 0.8 with at least a quarter of the prompts hitting;
- medium: at least 3 hits making up a quarter of the workflow or more; or workflow cues of combined
  weight >= 0.6 on their own;
- low: any hit, or any workflow cue that counts;
- none: neither.
One odd prompt in an ordinary workflow is one hit: it can raise the workflow to `low`, never above.
Workflow cues count only from MIN_WORKFLOW_VOLUME generations on: a handful of prompts has no shape.

Evidence first: a workflow cue is either *evidence* for its pattern (a share of requests that carry
the pattern's own cues, parameters, tools or refusals; a grid of slot values; or a cue whose file
says `evidence: true`) or *shape* (volume, rate, template reuse, diversity, and every "few/low"
condition), which fits many workflows. A shape cue counts, and is named in the reasons, only when
the pattern's own evidence covers at least SHAPE_GATE_SHARE of the requests (its hit share, or the
share measured by an evidence cue that fired). So a template reused for every call is "one judge
template" only when those calls resemble grading, and a broad topic spread says nothing about
persona cloning unless the prompts ask for the model's own voice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.core.audit.patterns import CUE_FED_SIGNALS, Pattern, WorkflowCue
from app.core.audit.scorer import HIT_THRESHOLD, combine_weights
from app.core.audit.signals import WorkflowSignals

LEVELS = ("none", "low", "medium", "high")
HIGH_MIN_HITS, HIGH_SHARE, HIGH_WORKFLOW = 10, 0.5, 0.3
HIGH_WORKFLOW_ALONE, HIGH_WORKFLOW_ALONE_SHARE = 0.8, 0.25
MEDIUM_MIN_HITS, MEDIUM_SHARE, MEDIUM_WORKFLOW_ALONE = 3, 0.25, 0.6
EXAMPLES = 3
MIN_WORKFLOW_VOLUME = 20
SHAPE_GATE_SHARE = 0.5
# Signals that count requests carrying a pattern's own evidence (a condition of presence on them is
# evidence); every other signal describes the workflow's shape.
EVIDENCE_SIGNALS = frozenset({"reasoning_share", "grading_share", "logprob_share", "max_tokens_1_share",
                              "tool_share", "refusal_share", "grid_cells", "grid_coverage", "template_family_share"})
PRESENCE_OPS = frozenset({"gt", "gte", "eq", "in", "truthy"})


@dataclass
class PatternVerdict:
    """One pattern's result for one workflow."""

    id: str
    name: str
    level: str
    score: float
    hits: int
    hit_share: float
    reasons: list[str] = field(default_factory=list)
    lookalikes: list[dict[str, str]] = field(default_factory=list)
    workflow_cues: list[str] = field(default_factory=list)
    examples: list[int] = field(default_factory=list)
    short_name: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.id, "name": self.name, "short_name": self.short_name or self.id, "level": self.level,
                "score": round(self.score, 4),
                "hits": self.hits, "hit_share": round(self.hit_share, 4), "reasons": self.reasons,
                "benign_lookalikes": self.lookalikes, "workflow_cues": self.workflow_cues,
                "example_generation_ids": self.examples}


def _level(hits: int, share: float, workflow: float) -> str:
    if (hits >= HIGH_MIN_HITS and share >= HIGH_SHARE and workflow >= HIGH_WORKFLOW) or (
            workflow >= HIGH_WORKFLOW_ALONE and share >= HIGH_WORKFLOW_ALONE_SHARE and hits >= HIGH_MIN_HITS):
        return "high"
    if (hits >= MEDIUM_MIN_HITS and share >= MEDIUM_SHARE) or workflow >= MEDIUM_WORKFLOW_ALONE:
        return "medium"
    if hits or workflow > 0:
        return "low"
    return "none"


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def is_evidence(cue: WorkflowCue, pattern: Pattern) -> bool:
    """Whether a workflow cue is evidence for `pattern` on its own (else it describes shape). A
    share counted by prompt cues (CUE_FED_SIGNALS) is evidence only for the patterns whose cues
    feed it: another pattern's grading prompts say nothing about reasoning reconstruction."""
    if cue.evidence is not None:
        return cue.evidence
    if cue.signal in CUE_FED_SIGNALS and cue.signal not in pattern.feeds_signals:
        return False
    return cue.signal in EVIDENCE_SIGNALS and cue.op in PRESENCE_OPS


def _evidence_share(cue: WorkflowCue, stats: dict[str, Any]) -> float:
    """The share of requests an evidence cue speaks for."""
    if cue.signal.startswith("grid_"):
        return float(stats.get("template_family_share") or 0.0)
    value = stats.get(cue.signal)
    return float(value) if cue.signal.endswith("_share") and isinstance(value, (int, float)) else 1.0


def counted_cues(pattern: Pattern, stats: dict[str, Any], n: int, hit_share: float) -> list[WorkflowCue]:
    """The workflow cues that fire and count: evidence cues, and shape cues once the pattern's own
    evidence covers SHAPE_GATE_SHARE of the requests."""
    if n < MIN_WORKFLOW_VOLUME:
        return []
    fired = [cue for cue in pattern.workflow_cues if cue.matches(stats)]
    evidence = [cue for cue in fired if is_evidence(cue, pattern)]
    own = max([hit_share, *(_evidence_share(cue, stats) for cue in evidence)])
    return [cue for cue in fired if cue in evidence or own >= SHAPE_GATE_SHARE]


def judge(pattern: Pattern, scores: np.ndarray, generation_ids: Sequence[int], signals: WorkflowSignals,
          evidence_for: dict[int, dict[str, Any]], scope: str = "workflow") -> PatternVerdict:
    """The verdict for one pattern, given this workflow's scores for it (aligned with ids); `scope`
    names what the scores cover in the reasons ("workflow", or "group" for a sub-stream)."""
    order = np.argsort(-scores, kind="stable")[:EXAMPLES]  # ties: the earlier row first
    best = [(float(scores[i]), int(generation_ids[i])) for i in order]
    return judge_counts(pattern, len(scores), int((scores >= HIT_THRESHOLD).sum()), best, signals, evidence_for,
                        scope)


def judge_counts(pattern: Pattern, n: int, hits: int, best: Sequence[tuple[float, int]], signals: WorkflowSignals,
                 evidence_for: dict[int, dict[str, Any]], scope: str = "workflow") -> PatternVerdict:
    """judge() from what it needs of the scores: their number, the hits, and the best EXAMPLES
    (score, generation id) pairs, highest first (so a running aggregate can judge)."""
    share = hits / n if n else 0.0
    stats = signals.as_dict()
    fired = counted_cues(pattern, stats, n, share)
    workflow = combine_weights([cue.weight for cue in fired])
    level = _level(hits, share, workflow)
    examples = [gid for score, gid in best[:EXAMPLES] if score >= HIT_THRESHOLD]
    reasons: list[str] = []
    if hits:
        reasons.append(f"{hits} of {n} prompts ({_percent(share)}) resemble {pattern.name.lower()}: "
                       f"{pattern.summary.rstrip('.')}.")
        top = evidence_for.get(examples[0], {}) if examples else {}
        if top.get("nearest"):
            reasons.append(f"The closest match (generation {examples[0]}) is near the library example "
                           f"\u201c{_clip(top['nearest'][0]['text'])}\u201d "
                           f"(similarity {top['nearest'][0]['similarity']:.2f}).")
        cue_ids = sorted({c for i in examples for c in evidence_for.get(i, {}).get("prompt_cues", [])})
        if cue_ids:
            names = [c.description.rstrip(".").lower() for c in pattern.prompt_cues if c.id in cue_ids]
            reasons.append("Cues in the prompts: " + "; ".join(names) + ".")
        param_ids = sorted({c for i in examples for c in evidence_for.get(i, {}).get("param_cues", [])})
        if param_ids:
            names = [c.description.rstrip(".").lower() for c in pattern.param_cues if c.id in param_ids]
            reasons.append("Cues in the request parameters: " + "; ".join(names) + ".")
    else:
        reasons.append(f"No prompt in this {scope} resembles {pattern.name.lower()} closely.")
    for cue in fired:
        described = cue.description.rstrip('.').lower().replace("in the workflow", f"in the {scope}")
        reasons.append(f"Across the {scope}: {described} "
                       f"({cue.signal} = {_format(stats.get(cue.signal))}).")
        if cue.signal == "grid_cells" and stats.get("grid_values"):
            reasons.append(_grid_sentence(stats))
    if any(cue.signal == "template_reuse_share" for cue in fired) and not stats.get("grid_cells") and any(
            cue.signal == "grid_cells" for cue in pattern.workflow_cues):
        reasons.append("The shared template fills no grid of slot values (grid_cells = 0): one task over "
                       "varied material, as a batch over one's own data looks, not a sweep of capabilities.")
    if level == "low" and hits == 1:
        reasons.append(f"A single prompt is not a pattern: one resemblance in a {scope} stays at low.")
    if level in ("medium", "high"):
        reasons.append("Resemblance is not intent: the benign practices below look the same from here.")
    lookalikes = lookalike_dicts(pattern) if level != "none" else []
    score = max(share, workflow if level != "none" else 0.0)
    return PatternVerdict(pattern.id, pattern.name, level, score, hits, share, reasons, lookalikes,
                          [cue.id for cue in fired], examples, pattern.short_name)


def lookalike_dicts(pattern: Pattern) -> list[dict[str, str]]:
    """The pattern's benign look-alikes in the report's form."""
    return [{"name": item.name, "description": item.description, "how_to_tell": item.how_to_tell}
            for item in pattern.benign_lookalikes]


def _grid_sentence(stats: dict[str, Any]) -> str:
    first, second = (", ".join(values) for values in stats["grid_values"][:2])
    return (f"The grid: {stats['grid_cells']} of {stats['grid_size']} cells seen "
            f"({_percent(float(stats['grid_coverage']))}), in {_percent(float(stats['template_family_share']))} "
            f"of the sampled prompts; slot values such as \u201c{first}\u201d and \u201c{second}\u201d.")


def _clip(text: str, limit: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
