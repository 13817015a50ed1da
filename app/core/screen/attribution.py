"""Style attribution: which model family's style a response shares, trained locally and honestly.

Training (`train_style_model`): texts labelled by family. A family with fewer than MIN_EXAMPLES
texts is left out and named as such; at least two families must remain. The labelled texts are
split (stratified, fixed seed): the model (one logistic regression over the hashed style features
of app.core.screen.style_features) is fitted on the training part, and on the held-out part we
measure accuracy and each family's one-vs-rest AUC, and calibrate the two gates of "unknown":

- out of distribution: each family keeps the centroid of its training vectors; a text whose cosine
  similarity to the centroid of the family it is attributed to is below that family's
  OOD_QUANTILE quantile of held-out similarities is "unknown" (it does not look like anything the
  model was trained on: human text, another model);
- not confident: the attributed probability must be at least the smallest threshold at which
  held-out attributions are right at least TARGET_PRECISION of the time.

A family whose held-out AUC is at most MIN_AUC is never named: its attributions read "unknown".
The model never names a family it has no examples of: the only names it can give are its classes.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.core.errors import StillroomError
from app.core.screen.style_features import FEATURE_DIM, FEATURE_VERSION, StyleFeaturizer

MIN_EXAMPLES = 30  # texts a family needs to be learned at all
HELDOUT_SHARE = 0.3
MIN_AUC = 0.6  # at or below: no signal (the 2026 study's reading)
OOD_QUANTILE = 0.01
TARGET_PRECISION = 0.9
C_REGULARIZATION = 4.0
SPLIT_SEED = 0
UNKNOWN = "unknown"
PREDICT_CHUNK = 4096


class AttributionError(StillroomError):
    """The labelled texts cannot train a style model (too few families or examples)."""


@dataclass
class TrainingSet:
    """Where the labelled texts came from: a name people recognise, its sha256 and its size."""

    name: str
    sha256: str
    rows: int

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"name": self.name, "sha256": self.sha256, "rows": self.rows}


@dataclass
class FamilyMetrics:
    """One family's held-out numbers."""

    family: str
    examples: int
    heldout: int
    auc: float
    accuracy: float  # share of its held-out texts attributed to it

    @property
    def has_signal(self) -> bool:
        """AUC above MIN_AUC."""
        return self.auc > MIN_AUC

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"family": self.family, "examples": self.examples, "heldout": self.heldout,
                "auc": round(self.auc, 4), "accuracy": round(self.accuracy, 4), "has_signal": self.has_signal}


@dataclass
class StyleModel:
    """A trained style model: weights over the hashed features, centroids and calibrated gates."""

    families: list[str]
    coef: np.ndarray  # (k or 1) x FEATURE_DIM
    intercept: np.ndarray
    centroids: np.ndarray  # k x FEATURE_DIM, unit length
    ood_thresholds: np.ndarray  # k
    prob_threshold: float
    accuracy: float
    metrics: list[FamilyMetrics]
    training_set: TrainingSet
    too_few: dict[str, int] = field(default_factory=dict)
    created_at: str = ""
    feature_version: str = FEATURE_VERSION
    likelihood: Any = None  # a likelihood.LikelihoodModel, when every family's model scored the training rows
    likelihood_note: str = ""  # why there is no likelihood model, when there is none
    _featurizer: StyleFeaturizer | None = field(default=None, repr=False)

    @property
    def featurizer(self) -> StyleFeaturizer:
        """The (stateless) featurizer, made on first use."""
        if self._featurizer is None:
            self._featurizer = StyleFeaturizer()
        return self._featurizer

    def metric(self, family: str) -> FamilyMetrics:
        """The held-out metrics of one family."""
        return next(m for m in self.metrics if m.family == family)

    @property
    def method(self) -> str:
        """What decides an attribution: 'likelihood' when every family's model scored the training
        rows, else 'style'."""
        return "likelihood" if self.likelihood is not None else "style"

    @property
    def heldout_accuracy(self) -> float:
        """The held-out accuracy of the method that decides."""
        return self.likelihood.accuracy if self.likelihood is not None else self.accuracy

    def probabilities(self, features: Any) -> np.ndarray:
        """Class probabilities (n x k) for a sparse feature matrix."""
        return linear_probabilities(features, self.coef, self.intercept, len(self.families))

    def centroid_similarity(self, features: Any) -> np.ndarray:
        """Cosine similarity of each row to each family's centroid (n x k)."""
        norms = np.sqrt(np.asarray(features.multiply(features).sum(axis=1))).ravel()
        sims = np.asarray(features @ self.centroids.T)
        return sims / np.where(norms > 0, norms, 1.0)[:, None]

    def predict(self, texts: Sequence[str]) -> RowAttributions:
        """Attribution of each text: probabilities, the named family or UNKNOWN, and why unknown."""
        probs_parts, sims_parts = [], []
        for start in range(0, len(texts), PREDICT_CHUNK):
            features = self.featurizer.transform(texts[start:start + PREDICT_CHUNK])
            probs_parts.append(self.probabilities(features))
            sims_parts.append(self.centroid_similarity(features))
        k = len(self.families)
        probs = np.vstack(probs_parts) if probs_parts else np.zeros((0, k))
        sims = np.vstack(sims_parts) if sims_parts else np.zeros((0, k))
        return self.attribute(probs, sims)

    def attribute(self, probs: np.ndarray, sims: np.ndarray) -> RowAttributions:
        """Apply the gates to probabilities and centroid similarities."""
        best = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
        rows = np.arange(len(best))
        in_dist = sims[rows, best] >= self.ood_thresholds[best]
        confident = probs[rows, best] >= self.prob_threshold
        signal = np.array([m.has_signal for m in self.metrics])[best] if len(best) else np.zeros(0, dtype=bool)
        named = in_dist & confident & signal
        return RowAttributions(self.families, probs, best, in_dist, confident, signal, named)

    def as_meta(self) -> dict[str, Any]:
        """Everything but the arrays, as JSON-ready values."""
        return {"families": self.families, "prob_threshold": self.prob_threshold, "accuracy": self.accuracy,
                "metrics": [m.as_dict() for m in self.metrics], "training_set": self.training_set.as_dict(),
                "too_few": self.too_few, "created_at": self.created_at, "feature_version": self.feature_version,
                "min_examples": MIN_EXAMPLES, "min_auc": MIN_AUC, "method": self.method,
                "heldout_accuracy": self.heldout_accuracy,
                "likelihood": self.likelihood.as_meta() if self.likelihood is not None else None,
                "likelihood_note": self.likelihood_note}

    def public_meta(self) -> dict[str, Any]:
        """as_meta without where the family models' files live (for reports that leave the machine)."""
        meta = self.as_meta()
        if self.likelihood is not None:
            meta["likelihood"] = self.likelihood.public_meta()
        return meta


@dataclass
class RowAttributions:
    """Per-row attribution: probabilities (n x k), the best family's index, the gates, and `named`
    (the rows attributed to a family rather than UNKNOWN)."""

    families: list[str]
    probs: np.ndarray
    best: np.ndarray
    in_distribution: np.ndarray
    confident: np.ndarray
    signal: np.ndarray
    named: np.ndarray

    def labels(self) -> list[str]:
        """The family named for each row, or UNKNOWN."""
        return [self.families[b] if ok else UNKNOWN for b, ok in zip(self.best, self.named)]

    def reasons(self) -> list[str]:
        """Why each row is unknown ('' for a named row)."""
        out = []
        for inside, sure, signal in zip(self.in_distribution, self.confident, self.signal):
            out.append("" if inside and sure and signal else
                       "unlike every trained family" if not inside else
                       "no style signal for that family (AUC <= 0.6)" if not signal else "not confident")
        return out


def dataset_hash(texts: Sequence[str], labels: Sequence[str]) -> str:
    """sha256 over the labelled texts in order (for a training set that is not one file)."""
    digest = hashlib.sha256()
    for text, label in zip(texts, labels):
        digest.update(json.dumps([label, text], ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def linear_probabilities(features: Any, coef: np.ndarray, intercept: np.ndarray, k: int) -> np.ndarray:
    """Class probabilities (n x k) of a fitted logistic regression (binary: one row of weights)."""
    logits = np.asarray(features @ coef.T) + intercept
    if k == 2:
        p1 = 1.0 / (1.0 + np.exp(-logits[:, 0]))
        return np.column_stack([1.0 - p1, p1])
    logits = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def stratified_split(labels: np.ndarray, seed: int, share: float = HELDOUT_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out indices: `share` of each label held out (seeded)."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for family in sorted(set(labels.tolist())):
        index = np.flatnonzero(labels == family)
        rng.shuffle(index)
        cut = max(1, int(round(len(index) * share)))
        held.extend(index[:cut].tolist())
        train.extend(index[cut:].tolist())
    return np.array(sorted(train)), np.array(sorted(held))


def roc_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if truth.all() or not truth.any():
        return 0.5
    return float(roc_auc_score(truth, scores))


def prob_threshold(probs: np.ndarray, right: np.ndarray, k: int) -> float:
    """The smallest probability at which held-out attributions at or above it are right at least
    TARGET_PRECISION of the time (1/k + a hair when all of them together are right that often)."""
    floor = 1.0 / k + 1e-6
    order = np.argsort(-probs)
    hits = np.cumsum(right[order]) / np.arange(1, len(order) + 1)
    ok = np.flatnonzero(hits >= TARGET_PRECISION)
    if not len(ok):
        return 1.0 + 1e-9  # never precise enough: every attribution reads unknown
    if ok[-1] == len(order) - 1:
        return floor  # precise enough with every attribution included: the smallest threshold is the floor
    return float(max(floor, probs[order][ok[-1]]))


def train_style_model(texts: Sequence[str], labels: Sequence[str], training_set: TrainingSet,
                      created_at: str = "", seed: int = SPLIT_SEED) -> StyleModel:
    """Fit, measure and calibrate a StyleModel on labelled texts (see the module's docstring).
    Raises AttributionError when fewer than two families have MIN_EXAMPLES usable texts."""
    from sklearn.linear_model import LogisticRegression

    pairs = [(t, str(l).strip()) for t, l in zip(texts, labels) if t and t.strip() and str(l or "").strip()]
    counts = Counter(label for _, label in pairs)
    too_few = {family: n for family, n in sorted(counts.items()) if n < MIN_EXAMPLES}
    families = sorted(family for family, n in counts.items() if n >= MIN_EXAMPLES)
    if len(families) < 2:
        have = ", ".join(f"{f} ({n})" for f, n in sorted(counts.items())) or "none"
        raise AttributionError(f"a style model needs at least two families with {MIN_EXAMPLES} or more non-empty "
                               f"texts each; the training set has: {have}")
    kept = [(t, l) for t, l in pairs if l in families]
    y = np.array([families.index(l) for _, l in kept])
    featurizer = StyleFeaturizer()
    features = featurizer.transform([t for t, _ in kept])
    train, held = stratified_split(y, seed)
    classifier = LogisticRegression(C=C_REGULARIZATION, max_iter=2000)
    classifier.fit(features[train], y[train])
    centroids = np.zeros((len(families), FEATURE_DIM), dtype=np.float32)
    for j in range(len(families)):
        mean = np.asarray(features[train[y[train] == j]].mean(axis=0)).ravel()
        centroids[j] = mean / (np.linalg.norm(mean) or 1.0)
    model = StyleModel(families, classifier.coef_.astype(np.float32), classifier.intercept_.astype(np.float64),
                       centroids, np.zeros(len(families)), 0.0, 0.0, [], training_set, too_few, created_at)
    probs = model.probabilities(features[held])
    sims = model.centroid_similarity(features[held])
    best = probs.argmax(axis=1)
    truth = y[held]
    model.accuracy = float((best == truth).mean())
    own = sims[np.arange(len(held)), truth]
    model.ood_thresholds = np.array([float(np.quantile(own[truth == j], OOD_QUANTILE)) for j in range(len(families))])
    model.prob_threshold = prob_threshold(probs[np.arange(len(held)), best], best == truth, len(families))
    model.metrics = [FamilyMetrics(f, counts[f], int((truth == j).sum()), roc_auc(truth == j, probs[:, j]),
                                   float((best[truth == j] == j).mean())) for j, f in enumerate(families)]
    model._featurizer = featurizer
    return model
