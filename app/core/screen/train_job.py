"""Training the style model as a job (yields Progress, returns the StyleModel), for the command line
and the Screen view's worker."""

from __future__ import annotations

from collections.abc import Generator

from app.core.cancel import NEVER, CancelToken
from app.core.progress import Progress
from app.core.screen.attribution import StyleModel, train_style_model
from app.core.screen.training import LabelledTexts


def train_job(source: LabelledTexts, created_at: str = "",
              cancel: CancelToken = NEVER) -> Generator[Progress, None, StyleModel | None]:
    """Fit, measure and calibrate a style model on `source`; None if cancelled before it starts."""
    yield Progress("training", 0, 1, f"{len(source.texts):,} texts")
    if cancel.cancelled:
        return None
    model = train_style_model(source.texts, source.labels, source.training_set, created_at)
    yield Progress("training", 1, 1)
    return model
