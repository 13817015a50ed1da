"""Training the style model as a job (yields Progress, returns the StyleModel), for the command line
and the Screen view's worker: the style model, then, when every family it learned has a local GGUF
registered, the likelihood model (app.core.screen.likelihood) on a sample of the same rows."""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
from sqlite_utils import Database

from app.core.cancel import NEVER, CancelToken
from app.core.models.bundled import BUNDLED, register_bundled
from app.core.progress import Progress
from app.core.screen.attribution import SPLIT_SEED, StyleModel, train_style_model
from app.core.screen.likelihood import (TRAIN_PER_FAMILY, family_models, likelihood_features, sample_per_family,
                                        train_likelihood)
from app.core.screen.training import LabelledTexts, family_name


def _fit_likelihood(model: StyleModel, source: LabelledTexts, db: Database,
                    cancel: CancelToken) -> Generator[Progress, None, None]:
    found = family_models(db, model.families)
    missing = [family for family in model.families if family not in found]
    bundled = {family_name(b.title) for b in BUNDLED}
    if any(family_name(family) in bundled for family in missing):  # a bundled model not used yet: register it
        register_bundled(db)
        found = family_models(db, model.families)
        missing = [family for family in model.families if family not in found]
    if missing:
        model.likelihood_note = (f"no local model file registered for {', '.join(missing)}: attributed by style only "
                                 "(add the family's GGUF with `stillroom models add PATH` and train again)")
        return
    rows = [i for i, (text, label) in enumerate(zip(source.texts, source.labels))
            if label in model.families and text.strip()]
    labels = np.array([model.families.index(source.labels[i]) for i in rows])
    chosen = sample_per_family(labels, TRAIN_PER_FAMILY)
    prompts = source.prompts or [""] * len(source.texts)
    pairs = [(prompts[rows[i]], source.texts[rows[i]]) for i in chosen]
    models = [found[family] for family in model.families]
    features = yield from likelihood_features(db, models, pairs, cancel)
    if features is None:
        return
    examples = {m.family: m.examples for m in model.metrics}
    model.likelihood = train_likelihood(features, labels[chosen], model.families, models, examples, SPLIT_SEED)


def train_job(source: LabelledTexts, created_at: str = "", cancel: CancelToken = NEVER,
              db: Database | None = None) -> Generator[Progress, None, StyleModel | None]:
    """Fit, measure and calibrate a style model on `source` (and its likelihood model when `db`
    names a local GGUF for every family); None if cancelled."""
    yield Progress("training", 0, 1, f"{len(source.texts):,} texts")
    if cancel.cancelled:
        return None
    model = train_style_model(source.texts, source.labels, source.training_set, created_at)
    yield Progress("training", 1, 1)
    if db is not None:
        yield from _fit_likelihood(model, source, db, cancel)
        if cancel.cancelled:
            return None
    return model
