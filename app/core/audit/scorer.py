"""Per-generation resemblance scores: semantic similarity to the pattern library, prompt cues and
request parameters, combined per pattern into a score in [0, 1] with its evidence.

A multinomial logistic model over the classes (each pattern, and benign) turns semantic features
into probabilities p_sem: for every pattern, the top-1 and top-3 mean cosine similarity to its
exemplars and to its benign look-alikes; and, for every class, a similarity-weighted vote of the
KNN_K library prompts nearest to the text (pattern exemplars and benign look-alikes of all patterns
together), which lets a prompt that sits among one pattern's exemplars win even when its top-1
similarity is modest. The model is fitted on the library's own exemplars (each exemplar's
similarity to itself left out), never on the public evaluation sets. Prompt cues and request
parameters then raise the score as independent evidence:

    score = 1 - (1 - p_sem) * (1 - CUE_SCALE * p_cues) * (1 - p_params)

where p_cues and p_params are the noisy-or of the weights of the cues that fired. CUE_SCALE keeps a
phrase alone from making a hit: the library's own exemplars fire their cues far more reliably than
real prompts do, so a model fitted with the cues as a feature trusted them too much.

Three numbers were calibrated on the public evaluation sets, on a fixed half of each set only
(tests/bench/eval_patterns.py reports that half and the held-out half separately): CUE_SCALE,
C_REGULARIZATION and KNN_K. HIT_THRESHOLD stayed at 0.5.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.audit.language import ENGLISH, UNKNOWN, detect_language
from app.core.audit.patterns import Pattern, PatternLibrary

TOP_K = 3
EVIDENCE_K = 3
SCORE_CHUNK = 4096
HIT_THRESHOLD = 0.5
CUE_SCALE = 0.9
C_REGULARIZATION = 4.0
KNN_K = 10
# Bump whenever scoring changes for the same library: stored scores are keyed by library and scorer.
# 3: prompts routed by language (app.core.audit.routing); non-English ones scored by the multilingual model.
SCORER_VERSION = "3"
# A parameter-driven pattern (`parameter_driven: true` in its file) has its evidence in the request
# parameters: without a parameter cue its text score is capped here, below a hit.
PARAMETER_DRIVEN_CAP = 0.45
# Centring by language (Scorer.fit with centre=True): a language needs this many library texts for a
# centre of its own; ANY_LANGUAGE is the whole library's mean, for every other language.
MIN_LANGUAGE_TEXTS = 50
ANY_LANGUAGE = ""


def combine_weights(weights: Sequence[float]) -> float:
    """Noisy-or of cue weights: 1 - prod(1 - w)."""
    result = 1.0
    for weight in weights:
        result *= 1.0 - max(0.0, min(1.0, weight))
    return 1.0 - result


def prompt_cue_hits(pattern: Pattern, text: str, language: str | None = None) -> list[str]:
    """Ids of the pattern's prompt cues that fire on `text` (in `language`, when detected)."""
    return [cue.id for cue in pattern.prompt_cues if cue.matches(text, language)]


def param_cue_hits(pattern: Pattern, params: Mapping[str, Any]) -> list[str]:
    """Ids of the pattern's request-parameter cues that fire on `params`."""
    return [cue.id for cue in pattern.param_cues if cue.matches(params)]


def _top(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-1 and top-k mean of a similarity matrix (k clipped to its width)."""
    k = min(k, sims.shape[1])
    part = -np.partition(-sims, k - 1, axis=1)[:, :k]
    return part.max(axis=1), part.mean(axis=1)


@dataclass
class _PatternModel:
    pattern: Pattern
    exemplars: np.ndarray
    benign: np.ndarray
    cue_weights: dict[str, float]


def _cue_strength(model: _PatternModel, text: str, language: str | None = None) -> float:
    """Noisy-or of the weights of the pattern's prompt cues that fire on `text`."""
    return combine_weights([model.cue_weights[c.id] for c in model.pattern.prompt_cues if c.matches(text, language)])


@dataclass
class _Neighbours:
    """Every library prompt (rows of `matrix`) with its class index, for the k-nearest vote; `spans`
    gives, per pattern in library order, the rows of its exemplars and of its benign look-alikes."""

    matrix: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    spans: tuple[tuple[slice, slice], ...]


def centred(vectors: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """`vectors` less `centre`, each row scaled back to unit length (a zero row stays zero)."""
    shifted = vectors - centre
    norms = np.linalg.norm(shifted, axis=-1, keepdims=True)
    return np.where(norms > 1e-12, shifted / np.maximum(norms, 1e-12), 0.0).astype(np.float32)


class Scorer:
    """Scores prompts against every pattern of a library. Build with Scorer.fit().

    One multinomial logistic model over the classes (every pattern, and `benign`) sees the
    similarity features of all patterns at once, so a prompt close to several patterns is
    attributed to the closest rather than scoring high on each.
    """

    def __init__(self, library: PatternLibrary, models: dict[str, _PatternModel], neighbours: _Neighbours,
                 classifier: Any, centres: dict[str, np.ndarray] | None = None) -> None:
        self.library = library
        self.centres = centres
        self._models = models
        self._neighbours = neighbours
        self._classifier = classifier
        self._columns = [list(classifier.classes_).index(pid) for pid in library.pattern_ids]

    @property
    def pattern_ids(self) -> tuple[str, ...]:
        """The patterns scored, in library order."""
        return self.library.pattern_ids

    @classmethod
    def fit(cls, library: PatternLibrary, vectors: Mapping[str, np.ndarray], centre: bool = False) -> Scorer:
        """Fit the model from the library's exemplars (each exemplar's own similarity left out).

        `vectors` maps each exemplar text (pattern and benign) to its normalized embedding. With
        `centre` (for a multilingual model), every vector, the library's and later the scored
        prompts', has a mean subtracted first: the mean of the library's texts in its language (the
        English originals, or one language's translated exemplars, app.core.audit.translations),
        else the mean of the whole library. Multilingual-e5-small's vectors share one large
        component (any two texts have a cosine of 0.7 or more) and carry the language itself;
        centring by language removes both, so a Spanish prompt is compared with the library by
        what it asks, not by being Spanish. The fitted probabilities are calibrated on the library
        in each model's own space, so HIT_THRESHOLD means the same for every model
        (app.core.audit.routing).
        """
        from sklearn.linear_model import LogisticRegression

        centres = None
        if centre:
            language_of = {text: lang for item in library.translations for lang, text in item.texts}
            unique = list(dict.fromkeys(t for p in library.patterns.values()
                                        for t in (*p.exemplars, *p.benign_exemplars)))
            groups: dict[str, list[str]] = {}
            for text in unique:
                groups.setdefault(language_of.get(text, ENGLISH), []).append(text)
            centres = {lang: np.stack([vectors[t] for t in texts]).astype(np.float32).mean(axis=0)
                       for lang, texts in groups.items() if len(texts) >= MIN_LANGUAGE_TEXTS}
            centres[ANY_LANGUAGE] = np.stack([vectors[t] for t in unique]).astype(np.float32).mean(axis=0)
            vectors = {t: centred(vectors[t][None, :], centres.get(language_of.get(t, ENGLISH),
                                                                   centres[ANY_LANGUAGE]))[0] for t in unique}

        ids = library.pattern_ids
        models = {pid: _PatternModel(library.patterns[pid],
                                     np.stack([vectors[t] for t in library.patterns[pid].exemplars]),
                                     np.stack([vectors[t] for t in library.patterns[pid].benign_exemplars]),
                                     {cue.id: cue.weight for cue in library.patterns[pid].prompt_cues})
                  for pid in ids}
        texts: list[str] = []
        labels: list[str] = []
        spans: list[tuple[slice, slice]] = []
        for pid in ids:
            start = len(texts)
            texts.extend(library.patterns[pid].exemplars)
            labels.extend([pid] * len(library.patterns[pid].exemplars))
            middle = len(texts)
            texts.extend(library.patterns[pid].benign_exemplars)
            labels.extend(["benign"] * len(library.patterns[pid].benign_exemplars))
            spans.append((slice(start, middle), slice(middle, len(texts))))
        matrix = np.stack([vectors[t] for t in texts]).astype(np.float32)
        classes = (*ids, "benign")
        neighbours = _Neighbours(matrix, np.array([classes.index(label) for label in labels]), classes,
                                 tuple(spans))
        # Leave one out: each exemplar's similarity to itself, and to its translations (and theirs to
        # it: app.core.audit.translations), is left out, so the fitted model has seen prompts as far
        # from the library as a new prompt in another language is, not near-copies of themselves.
        group_of = {text: item.en for item in library.translations for _, text in item.texts}
        groups = np.array([group_of.get(t, t) for t in texts], dtype=object)
        same_group = groups[:, None] == groups[None, :] if group_of else None
        features = _joint_features(neighbours, matrix, leave_one_out=True, exclude=same_group)
        weights = None
        if centres is not None:
            # Multilingual: a last feature says whether the text is in another language than English,
            # so the model learns how much lower a hit's similarities are across languages. The
            # translated rows are weighted to the English rows' class proportions: which exemplars
            # happen to be translated must not teach that another language means a pattern.
            translated = np.array([t in group_of for t in texts])
            features = np.column_stack([features, translated.astype(np.float64)])
            weights = _balanced_weights(np.array(labels), translated)
        classifier = LogisticRegression(C=C_REGULARIZATION, max_iter=5000)
        classifier.fit(features, np.array(labels), sample_weight=weights)
        return cls(library, models, neighbours, classifier, centres)

    def score(self, vectors: np.ndarray, texts: Sequence[str], params: Sequence[Mapping[str, Any]],
              with_evidence: bool = True,
              languages: Sequence[str] | None = None) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Scores (n x patterns) in [0, 1] and, per generation, the evidence behind each score.
        `languages` are the texts' detected languages when the caller has them (else detected here)."""
        n = len(texts)
        all_languages = list(languages) if languages is not None else [detect_language(t) for t in texts]
        ids = self.pattern_ids
        scores = np.zeros((n, len(ids)), dtype=np.float64)
        evidence: list[dict[str, Any]] = [{} for _ in range(n)]
        if self.centres is not None:
            vectors = self.centred_by_language(np.asarray(vectors, dtype=np.float32), texts, all_languages)
        for start in range(0, n, SCORE_CHUNK):
            stop = min(n, start + SCORE_CHUNK)
            chunk_vectors, chunk_texts = vectors[start:stop], texts[start:stop]
            features = _joint_features(self._neighbours, chunk_vectors)
            chunk_languages = all_languages[start:stop]
            if self.centres is not None:
                features = np.column_stack([features, [float(lang not in (ENGLISH, UNKNOWN)) for lang in chunk_languages]])
            p_sem = self._classifier.predict_proba(features)[:, self._columns]
            for column, pid in enumerate(ids):
                model = self._models[pid]
                cues = np.array([_cue_strength(model, t, lang) for t, lang in zip(chunk_texts, chunk_languages)])
                p_text = 1.0 - (1.0 - p_sem[:, column]) * (1.0 - CUE_SCALE * cues)
                # no parameters, no parameter cue (an absent field never matches)
                fired = [param_cue_hits(model.pattern, params[i]) if params[i] else [] for i in range(start, stop)]
                p_params = np.array([combine_weights([c.weight for c in model.pattern.param_cues if c.id in hits])
                                     if hits else 0.0 for hits in fired])
                if model.pattern.parameter_driven:
                    capped = np.minimum(p_text, PARAMETER_DRIVEN_CAP)
                    p_text = np.where([not hits for hits in fired], capped, p_text)
                column_scores = 1.0 - (1.0 - p_text) * (1.0 - p_params)
                scores[start:stop, column] = column_scores
                if not with_evidence:
                    continue
                for offset in range(stop - start):
                    if column_scores[offset] >= HIT_THRESHOLD / 2 or fired[offset]:
                        evidence[start + offset][pid] = self._evidence(model, chunk_vectors[offset],
                                                                       chunk_texts[offset], fired[offset],
                                                                       float(p_text[offset]), chunk_languages[offset])
        return scores, evidence

    def centred_by_language(self, vectors: np.ndarray, texts: Sequence[str],
                            languages: Sequence[str] | None = None) -> np.ndarray:
        """Each vector less the centre of its text's language (else the library's), re-normalized."""
        assert self.centres is not None
        fallback = self.centres[ANY_LANGUAGE]
        if languages is None:
            languages = [detect_language(t) for t in texts]
        centres = np.stack([self.centres.get(lang, fallback) for lang in languages]) if len(texts) else fallback
        return centred(vectors, centres)

    @staticmethod
    def _evidence(model: _PatternModel, vector: np.ndarray, text: str, fired_params: list[str],
                  p_text: float, language: str) -> dict[str, Any]:
        sims = model.exemplars @ vector
        nearest = np.argsort(-sims)[:EVIDENCE_K]
        benign_sims = model.benign @ vector
        closest_benign = int(np.argmax(benign_sims))
        return {
            "text_score": round(p_text, 4),  # the semantic probability combined with the prompt cues
            "nearest": [{"text": model.pattern.exemplars[i], "similarity": round(float(sims[i]), 4)} for i in nearest],
            "nearest_benign": {"text": model.pattern.benign_exemplars[closest_benign],
                               "similarity": round(float(benign_sims[closest_benign]), 4)},
            "prompt_cues": prompt_cue_hits(model.pattern, text, language),
            "param_cues": fired_params,
        }


def _balanced_weights(labels: np.ndarray, translated: np.ndarray) -> np.ndarray:
    """Row weights: 1 for the English rows; for the translated rows, per class, the class's share
    among the English rows over its share among the translated ones."""
    weights = np.ones(len(labels), dtype=np.float64)
    english, other = labels[~translated], labels[translated]
    if not len(other) or not len(english):
        return weights
    for label in set(other.tolist()):
        share_other = float(np.mean(other == label))
        weights[translated & (labels == label)] = float(np.mean(english == label)) / share_other
    return weights


def _joint_features(neighbours: _Neighbours, vectors: np.ndarray, leave_one_out: bool = False,
                    exclude: np.ndarray | None = None) -> np.ndarray:
    """For every pattern: top-1 and top-3 similarity to its exemplars and to its benign look-alikes;
    then, for every class, the similarity-weighted share of the KNN_K nearest library prompts.
    One product with the whole library serves both."""
    sims = vectors @ neighbours.matrix.T
    if leave_one_out:
        sims = np.where(sims > 0.9999, -1.0, sims)
    if exclude is not None:  # (vectors x library) pairs whose similarity is left out
        sims = np.where(exclude, -1.0, sims)
    blocks = []
    for exemplars, benign in neighbours.spans:
        blocks.extend(_top(sims[:, exemplars], TOP_K))
        blocks.extend(_top(sims[:, benign], TOP_K))
    k = min(KNN_K, sims.shape[1])
    nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    weights = np.clip(np.take_along_axis(sims, nearest, axis=1), 0.0, None)
    labels = neighbours.labels[nearest]
    blocks.extend((weights * (labels == j)).sum(axis=1) / k for j in range(len(neighbours.classes)))
    return np.column_stack(blocks).astype(np.float64)


def scores_key(library: PatternLibrary) -> str:
    """The key stored scores are kept under (audit_scores.scores_key): the library's content hash and
    SCORER_VERSION, so a changed library or a changed scorer re-scores every generation instead of
    reusing old scores."""
    return hashlib.sha256(f"{library.content_hash}:scorer-{SCORER_VERSION}".encode()).hexdigest()
