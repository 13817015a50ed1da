"""A file's responses summed up against a style model: per family, the share of rows attributed
to it and its mean probability, the share "unknown", and one verdict for the file. Where the model
has a likelihood part, the sampled rows it scored decide; the style shares are reported beside.

The verdict names a family only when it is attributed at least VERDICT_SHARE of the file's
responses, its held-out AUC is above MIN_AUC, and the file has at least MIN_RESPONSES responses;
otherwise it is "unknown", with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.core.screen.attribution import MIN_AUC, MIN_EXAMPLES, UNKNOWN, FamilyMetrics, RowAttributions, StyleModel

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
    method: str = "style"  # what decided: 'likelihood' (sampled rows scored by each family's model) or 'style'
    likelihood_rows: int = 0
    style_families: list[FamilyShare] = field(default_factory=list)  # the style model's shares over every row

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"verdict": self.verdict, "reason": self.reason, "responses": self.responses, "method": self.method,
                "likelihood_rows": self.likelihood_rows, "unknown_share": round(self.unknown_share, 4),
                "families": [f.as_dict() for f in self.families],
                "style_families": [f.as_dict() for f in self.style_families],
                "not_learned": self.not_learned, "style_model": self.model}


def _shares(families: list[str], metrics: list[FamilyMetrics], rows: RowAttributions) -> list[FamilyShare]:
    n = len(rows.best)
    return [FamilyShare(family, float((rows.named & (rows.best == j)).sum() / n) if n else 0.0,
                        float(rows.probs[:, j].mean()) if n else 0.0, metric.auc, metric.accuracy, metric.examples)
            for j, (family, metric) in enumerate(zip(families, metrics))]


def _select(rows: RowAttributions, keep: np.ndarray) -> RowAttributions:
    return RowAttributions(rows.families, rows.probs[keep], rows.best[keep], rows.in_distribution[keep],
                           rows.confident[keep], rows.signal[keep], rows.named[keep])


def summarize(model: StyleModel, rows: RowAttributions, has_response: np.ndarray,
              likelihood: RowAttributions | None = None) -> AttributionSummary:
    """Sum up the attributions of the rows that have a response. With `likelihood` (the sampled
    rows scored by every family's model), those decide the verdict and the shares; the style
    model's shares over every row are reported beside them."""
    style_rows = _select(rows, has_response)
    style = _shares(model.families, model.metrics, style_rows)
    meta = model.public_meta()
    if likelihood is not None and model.likelihood is not None:
        deciding, shares, method = likelihood, _shares(model.families, model.likelihood.metrics, likelihood), "likelihood"
        scored = f"{len(likelihood.best)} sampled responses scored by each family's own model"
    else:
        deciding, shares, method, scored = style_rows, style, "style", "the responses' style"
    n = len(deciding.best)
    unknown = float((~deciding.named).sum() / n) if n else 1.0
    top = max(shares, key=lambda s: s.share)
    training = model.training_set.name
    if int(has_response.sum()) < MIN_RESPONSES:
        verdict = UNKNOWN
        reason = f"only {int(has_response.sum())} responses with text; at least {MIN_RESPONSES} are needed to judge a file"
    elif top.share >= VERDICT_SHARE and method == "likelihood":
        verdict = top.family
        reason = (f"{top.share * 100:.0f}% of {scored} are as probable under {top.family}'s model as its own answers "
                  f"and attributed to it (held-out accuracy {model.heldout_accuracy * 100:.1f}%, AUC {top.auc:.2f} on "
                  f"{training})")
    elif top.share >= VERDICT_SHARE:
        verdict = top.family
        reason = (f"{top.share * 100:.0f}% of the responses share the style of {top.family} (held-out accuracy "
                  f"{model.heldout_accuracy * 100:.1f}%, AUC {top.auc:.2f} on {training})")
    elif method == "likelihood":
        verdict = UNKNOWN
        reason = (f"{unknown * 100:.0f}% of {scored} are less probable under every family's model than that "
                  f"family's own answers, or not clearly one family's; no family reaches {VERDICT_SHARE * 100:.0f}% "
                  f"(it knows only: {', '.join(model.families)})")
    else:
        verdict = UNKNOWN
        reason = (f"{unknown * 100:.0f}% of the responses match no trained family's style; no family reaches "
                  f"{VERDICT_SHARE * 100:.0f}% (it knows only: {', '.join(model.families)})")
    not_learned = dict(model.too_few)
    if not_learned:
        reason += f"; not learned (fewer than {MIN_EXAMPLES} examples): {', '.join(not_learned)}"
    if method == "style" and model.likelihood_note:
        reason += f"; {model.likelihood_note}"
    return AttributionSummary(verdict, reason, int(has_response.sum()), unknown, shares, meta, not_learned, method,
                              n if method == "likelihood" else 0, style)


def no_model_summary(reason: str) -> AttributionSummary:
    """The summary when there is no style model to ask."""
    return AttributionSummary(UNKNOWN, reason, 0, 1.0, [], {})
