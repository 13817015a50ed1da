"""Scoring for the evaluation scripts as the audit scores: each prompt routed by language
(app/core/audit/routing.py) to all-MiniLM-L6-v2 or multilingual-e5-small, each model's scorer fitted
on the library (the multilingual one with its translated exemplars, vectors centred), or either
model alone for comparison. Embeddings are cached (eval_cache.py).
"""

from __future__ import annotations

import numpy as np

from app.core.audit.embeddings import Encoder
from app.core.audit.encoders import MultilingualEncoder
from app.core.audit.language import detect_language
from app.core.audit.patterns import PatternLibrary
from app.core.audit.routing import routed_to_multilingual
from app.core.audit.scorer import HIT_THRESHOLD, Scorer
from app.core.audit.translations import multilingual_view
from tests.bench.eval_cache import cached_encode

MODES = ("routed", "minilm", "e5")


class RoutedScorers:
    """Both models' scorers over one library, fitted on first use."""

    def __init__(self, library: PatternLibrary) -> None:
        self.library = library
        self.encoders = {"minilm": Encoder(), "e5": MultilingualEncoder()}
        self._scorers: dict[str, Scorer] = {}

    def scorer(self, model: str) -> Scorer:
        if model not in self._scorers:
            encoder = self.encoders[model]
            centre = bool(getattr(encoder, "centre_vectors", False))
            library = multilingual_view(self.library) if centre else self.library
            texts = sorted({t for p in library.patterns.values() for t in (*p.exemplars, *p.benign_exemplars)})
            self._scorers[model] = Scorer.fit(library, dict(zip(texts, cached_encode(encoder, texts))), centre=centre)
        return self._scorers[model]

    @property
    def pattern_ids(self) -> tuple[str, ...]:
        return self.library.pattern_ids

    def scores(self, prompts: list[str], mode: str = "routed") -> np.ndarray:
        """Scores (prompts x patterns) with the prompts routed as `mode` says."""
        if mode == "routed":
            to_e5 = [routed_to_multilingual(detect_language(p)) for p in prompts]
        else:
            to_e5 = [mode == "e5"] * len(prompts)
        out = np.zeros((len(prompts), len(self.pattern_ids)), dtype=np.float64)
        for model, chosen in (("e5", True), ("minilm", False)):
            positions = [i for i, m in enumerate(to_e5) if m == chosen]
            if not positions:
                continue
            texts = [prompts[i] for i in positions]
            got, _ = self.scorer(model).score(cached_encode(self.encoders[model], texts), texts,
                                              [{} for _ in texts], with_evidence=False)
            out[positions] = got
        return out

    def labels(self, prompts: list[str], mode: str = "routed") -> list[str]:
        """Each prompt's best pattern when that is a hit, else benign."""
        ids = self.pattern_ids
        return [ids[int(np.argmax(row))] if row.max() >= HIT_THRESHOLD else "benign"
                for row in self.scores(prompts, mode)]
