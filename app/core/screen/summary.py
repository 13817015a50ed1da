"""A file's responses summed up against a style model: per family, the share of rows attributed
to it and its mean probability, the share "unknown", and one verdict for the file.

The verdict names a family only when it is attributed at least VERDICT_SHARE of the file's
responses, its held-out AUC is above MIN_AUC, and the file has at least MIN_RESPONSES responses;
otherwise it is "unknown", with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.core.screen.attribution import MIN_AUC, MIN_EXAMPLES, UNKNOWN, RowAttributions, StyleModel

VERDICT_SHARE = 0.5
MIN_RESPONSES = 20


@dataclass
class FamilyShare:
    """One family's part in a file's responses, with the model's held-out numbers for it."""

    family: str
    share: float  # rows attributed to it
    mean_probability: float
    auc: float
    accuracy: float
    examples: int

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"family": self.family, "share": round(self.share, 4), "mean_probability": round(self.mean_probability, 4),
                "heldout_auc": round(self.auc, 4), "heldout_accuracy": round(self.accuracy, 4),
                "training_examples": self.examples, "has_signal": self.auc > MIN_AUC}


@dataclass
class AttributionSummary:
    """What a file's responses say about who wrote them."""

    verdict: str  # a family or UNKNOWN
    reason: str
    responses: int
    unknown_share: float
    families: list[FamilyShare]
    model: dict[str, Any]  # the style model's description (training set, accuracy, thresholds)
    not_learned: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"verdict": self.verdict, "reason": self.reason, "responses": self.responses,
                "unknown_share": round(self.unknown_share, 4), "families": [f.as_dict() for f in self.families],
                "not_learned": self.not_learned, "style_model": self.model}


def summarize(model: StyleModel, rows: RowAttributions, has_response: np.ndarray) -> AttributionSummary:
    """Sum up the attributions of the rows that have a response."""
    n = int(has_response.sum())
    named, best, probs = rows.named[has_response], rows.best[has_response], rows.probs[has_response]
    shares = []
    for j, family in enumerate(model.families):
        metric = model.metric(family)
        shares.append(FamilyShare(family, float((named & (best == j)).sum() / n) if n else 0.0,
                                  float(probs[:, j].mean()) if n else 0.0, metric.auc, metric.accuracy,
                                  metric.examples))
    unknown = float((~named).sum() / n) if n else 1.0
    meta = {**model.as_meta(), "heldout_accuracy": round(model.accuracy, 4)}
    top = max(shares, key=lambda s: s.share)
    if n < MIN_RESPONSES:
        verdict, reason = UNKNOWN, f"only {n} responses with text; at least {MIN_RESPONSES} are needed to judge a file"
    elif top.share >= VERDICT_SHARE:
        verdict = top.family
        reason = (f"{top.share * 100:.0f}% of the responses share the style of {top.family} (held-out accuracy "
                  f"{model.accuracy * 100:.1f}%, AUC {top.auc:.2f} on {model.training_set.name})")
    else:
        verdict = UNKNOWN
        reason = (f"{unknown * 100:.0f}% of the responses match no trained family's style; no family reaches "
                  f"{VERDICT_SHARE * 100:.0f}% (it knows only: {', '.join(model.families)})")
    not_learned = dict(model.too_few)
    if not_learned:
        reason += f"; not learned (fewer than {MIN_EXAMPLES} examples): {', '.join(not_learned)}"
    return AttributionSummary(verdict, reason, n, unknown, shares, meta, not_learned)


def no_model_summary(reason: str) -> AttributionSummary:
    """The summary when there is no style model to ask."""
    return AttributionSummary(UNKNOWN, reason, 0, 1.0, [], {})
