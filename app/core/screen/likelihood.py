"""Attribution by likelihood: how probable each family's own model finds a response.

Style features see word choice and layout; they cannot tell a base model's completions from the
human web text it was trained on. When a local GGUF of every trained family is registered, each
response is also scored by every family's model: the mean log probability of its first
ANSWER_TOKENS tokens after the prompt, rendered the way that model is asked (its chat template, or
the prompt and a newline for a model without one), and the mean entropy of the model's
next-token distribution there. A model's own samples are far more probable under it than anyone
else's text (DetectGPT, Binoculars and "Idiosyncrasies in LLMs" read the same signal).

The likelihood model is a logistic regression over those 2 x families numbers, trained and
measured on the same stratified split as the style model, with two gates of "unknown": a response
less probable under the attributed family's model than all but OOD_QUANTILE of that family's own
answers (human text, another model's), and the probability threshold the style model uses.

Scoring runs a forward pass per response and family (about 0.2-0.3 s on two cores for the bundled
models), so training scores at most TRAIN_PER_FAMILY rows of each family and a screen at most
SCREEN_ROWS sampled responses; the report says how many.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlite_utils import Database

from app.core.cancel import NEVER, CancelToken
from app.core.models.registry import cached_sha256
from app.core.models.gguf_info import read_gguf_info
from app.core.models.runner import LoadOptions, Runner
from app.core.models.sampling import GenerationRequest
from app.core.progress import Progress
from app.core.screen.attribution import (FamilyMetrics, RowAttributions, linear_probabilities, prob_threshold,
                                         roc_auc, stratified_split)

PROMPT_CHARS = 240  # the same context for every family's model
ANSWER_TOKENS = 48
N_CTX = 256
TRAIN_PER_FAMILY = 100
SCREEN_ROWS = 100
OOD_QUANTILE = 0.02
FEATURES_PER_FAMILY = 2  # mean log probability, mean entropy
SAMPLE_SEED = 0


@dataclass(frozen=True)
class FamilyModel:
    """The local GGUF that stands for a family: its sha256, name and file."""

    family: str
    sha256: str
    name: str
    path: str

    def as_dict(self) -> dict[str, str]:
        """JSON form (the file's name, not where it lives)."""
        return {"family": self.family, "sha256": self.sha256, "name": self.name, "file": Path(self.path).name}


def family_models(db: Database, families: Sequence[str]) -> dict[str, FamilyModel]:
    """For each family (a label as the training set wrote it), the newest registered generation
    model whose name (or file name) is of that family and whose file is still there. Families
    without one are left out."""
    from app.core.models.embedding_model import is_embedding_model
    from app.core.screen.training import family_name

    wanted = {family_name(family) or family: family for family in families}  # "Gemma 3 270M" names gemma-3 too
    found: dict[str, FamilyModel] = {}
    rows = db.execute("SELECT sha256, name, file_name, path, architecture, metadata FROM models "
                      "ORDER BY added_at DESC").fetchall()
    for sha, name, file_name, path, architecture, metadata in rows:
        if not path or not Path(path).is_file() or is_embedding_model(architecture, json.loads(metadata or "{}")):
            continue
        for candidate in (name, file_name):
            family = wanted.get(family_name(candidate))
            if family is not None and family not in found:
                found[family] = FamilyModel(family, sha, name or file_name, path)
    return found


def _request(prompt: str, chat: bool) -> GenerationRequest:
    prompt = prompt[:PROMPT_CHARS]
    if chat:
        return GenerationRequest("chat", messages=[{"role": "user", "content": prompt}])
    return GenerationRequest("completion", prompt=f"{prompt}\n" if prompt else "")


def likelihood_features(db: Database, models: Sequence[FamilyModel], pairs: Sequence[tuple[str, str]],
                        cancel: CancelToken = NEVER) -> Generator[Progress, None, np.ndarray | None]:
    """n x (2 x families) numbers for (prompt, response) pairs: under each family's model in turn,
    the response's mean log probability and mean entropy. Yields Progress; None if cancelled.
    StillroomError (ModelFileError) when a model file cannot be loaded or no longer has the
    sha256 it was trained with."""
    from app.core.errors import ModelFileError

    out = np.zeros((len(pairs), FEATURES_PER_FAMILY * len(models)))
    total = len(pairs) * len(models)
    for j, model in enumerate(models):
        info = read_gguf_info(model.path)
        if cached_sha256(db, Path(info.path)) != model.sha256:
            raise ModelFileError(f"{Path(model.path).name}: the file of {model.family} changed since the style model "
                                 "was trained (its sha256 differs); train it again")
        runner = Runner()
        runner.load(model.sha256, info, LoadOptions(n_ctx=N_CTX))
        try:
            for i, (prompt, response) in enumerate(pairs):
                if cancel.cancelled:
                    return None
                score = runner.score(_request(prompt, info.has_chat_template), response, ANSWER_TOKENS)
                out[i, FEATURES_PER_FAMILY * j] = score.mean_logprob
                out[i, FEATURES_PER_FAMILY * j + 1] = score.mean_entropy
                if i % 10 == 0:
                    yield Progress("likelihood", j * len(pairs) + i, total, model.family)
        finally:
            runner.unload()
    yield Progress("likelihood", total, total)
    return out


def sample_per_family(labels: Sequence[int], per_family: int, seed: int = SAMPLE_SEED) -> np.ndarray:
    """Indices of at most `per_family` rows of each label (seeded, in their original order)."""
    rng = np.random.default_rng(seed)
    array = np.asarray(labels)
    chosen: list[int] = []
    for label in sorted(set(array.tolist())):
        index = np.flatnonzero(array == label)
        chosen.extend(index if len(index) <= per_family else rng.choice(index, per_family, replace=False))
    return np.array(sorted(int(i) for i in chosen), dtype=int)


@dataclass
class LikelihoodModel:
    """A trained likelihood model: each family's GGUF, the features' standardisation, the weights,
    and the calibrated gates."""

    families: list[str]
    models: list[FamilyModel]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    thresholds: np.ndarray  # per family: the OOD_QUANTILE of its own answers' mean log probability
    prob_threshold: float
    accuracy: float
    metrics: list[FamilyMetrics]
    rows: int

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (n x k)."""
        return linear_probabilities((features - self.mean) / self.scale, self.coef, self.intercept, len(self.families))

    def attribute(self, features: np.ndarray) -> RowAttributions:
        """The gated attribution of each scored row."""
        probs = self.probabilities(features)
        best = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
        rows = np.arange(len(best))
        own = features[rows, FEATURES_PER_FAMILY * best] if len(best) else np.zeros(0)
        in_dist = own >= self.thresholds[best]
        confident = probs[rows, best] >= self.prob_threshold
        signal = np.array([m.has_signal for m in self.metrics])[best] if len(best) else np.zeros(0, dtype=bool)
        return RowAttributions(self.families, probs, best, in_dist, confident, signal, in_dist & confident & signal)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays to keep in the model file."""
        return {"lik_mean": self.mean, "lik_scale": self.scale, "lik_coef": self.coef, "lik_intercept": self.intercept,
                "lik_thresholds": self.thresholds}

    def as_meta(self) -> dict[str, Any]:
        """Everything but the arrays."""
        return {"models": [m.as_dict() | {"path": m.path} for m in self.models], "prob_threshold": self.prob_threshold,
                "accuracy": self.accuracy, "metrics": [m.as_dict() for m in self.metrics], "rows": self.rows,
                "answer_tokens": ANSWER_TOKENS, "prompt_chars": PROMPT_CHARS, "ood_quantile": OOD_QUANTILE,
                "own_logprob_thresholds": [round(float(t), 4) for t in self.thresholds]}

    def public_meta(self) -> dict[str, Any]:
        """as_meta without where the model files live (for reports)."""
        meta = self.as_meta()
        meta["models"] = [m.as_dict() for m in self.models]
        return meta


def train_likelihood(features: np.ndarray, y: np.ndarray, families: list[str], models: list[FamilyModel],
                     examples: dict[str, int], seed: int) -> LikelihoodModel:
    """Fit, measure and calibrate a LikelihoodModel on scored rows (y: family indices)."""
    from sklearn.linear_model import LogisticRegression

    train, held = stratified_split(y, seed)
    mean = features[train].mean(axis=0)
    scale = features[train].std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    classifier = LogisticRegression(C=1.0, max_iter=2000).fit((features[train] - mean) / scale, y[train])
    k = len(families)
    own = features[np.arange(len(y)), FEATURES_PER_FAMILY * y]
    thresholds = np.array([float(np.quantile(own[y == j], OOD_QUANTILE)) for j in range(k)])
    model = LikelihoodModel(families, models, mean, scale, classifier.coef_.astype(np.float64),
                            classifier.intercept_.astype(np.float64), thresholds, 0.0, 0.0, [], len(y))
    probs = model.probabilities(features[held])
    best, truth = probs.argmax(axis=1), y[held]
    model.accuracy = float((best == truth).mean())
    model.prob_threshold = prob_threshold(probs[np.arange(len(held)), best], best == truth, k)
    model.metrics = [FamilyMetrics(f, examples.get(f, int((y == j).sum())), int((truth == j).sum()),
                                   roc_auc(truth == j, probs[:, j]), float((best[truth == j] == j).mean()))
                     for j, f in enumerate(families)]
    return model
