"""Which embedding model scores a prompt: routing by language.

English, and text the detector (app.core.audit.language) cannot place, go to the default model,
all-MiniLM-L6-v2, exactly as before routing existed, so English traffic is embedded and scored as
fast and as well as it was. Every other language goes to the multilingual model
(app.core.audit.encoders), whose scorer is fitted on the library with its translated exemplars
(app.core.audit.translations) embedded by that same model.

Scores from the two models are comparable: each model's scorer is a logistic model fitted on the
library's own exemplars in that model's space, so a score is a probability calibrated on the same
labelled prompts, and one hit threshold serves both (tests/bench/eval_multilingual.py measures per-language F1
with that one threshold). A workflow mixing languages is aggregated from
these per-prompt scores like any other. Every prompt also keeps its default-model vector, which the
workflow signals, sub-stream clustering and the map use, so they stay in one space.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.core.audit.language import ENGLISH, UNKNOWN, detect_language

DEFAULT_LANGUAGES = frozenset({ENGLISH, UNKNOWN})


def routed_to_multilingual(language: str) -> bool:
    """Whether a prompt in `language` is scored by the multilingual model."""
    return language not in DEFAULT_LANGUAGES


@dataclass(frozen=True)
class Routes:
    """The languages of a batch of prompts and the positions the multilingual model scores."""

    languages: tuple[str, ...]
    multilingual: tuple[int, ...]

    @property
    def default(self) -> tuple[int, ...]:
        """The positions the default model scores."""
        chosen = set(self.multilingual)
        return tuple(i for i in range(len(self.languages)) if i not in chosen)


def route(texts: Sequence[str]) -> Routes:
    """Detect each text's language and split the batch between the two models."""
    languages = tuple(detect_language(text) for text in texts)
    return Routes(languages, tuple(i for i, lang in enumerate(languages) if routed_to_multilingual(lang)))
