"""The Screen view's jobs, as generator factories for its JobRunner: screen a file (report, then
its map layer) and train the style model from the ledger. Qt-free; each opens its own connection
on the worker thread (the exemplars' vectors are cached there; nothing of the file is written)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

from app.core.audit.embeddings import Encoder
from app.core.audit.map_data import MapData
from app.core.audit.patterns import PatternLibrary
from app.core.audit.projection import ProjectionStore
from app.core.cancel import CancelToken
from app.core.progress import Progress
from app.core.screen.attribution import AttributionError, StyleModel
from app.core.screen.map_layer import screen_map
from app.core.screen.model_file import load_model, save_model
from app.core.screen.run import ScreenResult, screen_file
from app.core.screen.train_job import train_job
from app.core.screen.training import labelled_file, ledger_generations
from app.core.store import open_db
from app.core.store.ledger import utc_now


@dataclass
class ScreenOutcome:
    """What a screen job returns: the result and its map layer."""

    result: ScreenResult
    map: MapData


def screen_job(path: Path, ledger_path: Path, encoder: Callable[[], Encoder], library: Callable[[], PatternLibrary],
               store: ProjectionStore, model_path: Path | None = None):
    """A generator factory: screen `path`, then build its map layer; Progress, then ScreenOutcome."""

    def run(cancel: CancelToken) -> Generator[Progress, None, ScreenOutcome | None]:
        yield Progress("starting", 0, 0)
        the_library, the_encoder = library(), encoder()
        model: StyleModel | None
        try:
            model, reason = load_model(model_path), ""
        except AttributionError as exc:
            model, reason = None, str(exc)
        db = open_db(ledger_path)
        try:
            result = yield from screen_file(path, db, the_encoder, the_library, model, None, reason, cancel)
            if result is None or cancel.cancelled:
                return None
            layer = yield from screen_map(db, the_encoder, the_library, store, result, cancel)
            return None if layer is None else ScreenOutcome(result, layer)
        finally:
            db.close()

    return run


def train_ledger_job(ledger_path: Path, model_path: Path | None = None):
    """A generator factory: train and save the style model from the ledger; returns the StyleModel."""

    def run(cancel: CancelToken) -> Generator[Progress, None, StyleModel | None]:
        db = open_db(ledger_path)
        try:
            source = ledger_generations(db)
            model = yield from train_job(source, utc_now(), cancel, db)
        finally:
            db.close()
        if model is not None:
            save_model(model, model_path)
        return model

    return run


def train_file_job(path: Path, label_field: str, ledger_path: Path, model_path: Path | None = None):
    """A generator factory: train and save the style model from a labelled file (the ledger's
    registered models give the likelihood part its family models)."""

    def run(cancel: CancelToken) -> Generator[Progress, None, StyleModel | None]:
        source = yield from labelled_file(path, label_field, None, cancel)
        if source is None:
            return None
        db = open_db(ledger_path)
        try:
            model = yield from train_job(source, utc_now(), cancel, db)
        finally:
            db.close()
        if model is not None:
            save_model(model, model_path)
        return model

    return run
