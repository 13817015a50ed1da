"""The Audit view's long jobs, as generator factories for its JobRunner: run the audit then build the
map, only rebuild the map with another projection method, or fold new generations into a shown
audit (refresh_job). Each yields Progress and returns an
AuditOutcome (None when cancelled).

Qt-free. Each job opens its own ledger connection (open_db, WAL) on the worker thread, because the
audit writes embeddings and scores. The encoder and the pattern library are made by the caller's
factories on that thread, so torch is imported only when the first audit runs.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

from app.core.audit.embeddings import Encoder, shared_encoder
from app.core.audit.map_data import MapData, build_map
from app.core.audit.patterns import PatternLibrary, load_library
from app.core.audit.projection import ProjectionStore
from app.core.audit.refresh import refresh_audit
from app.core.audit.run import AuditResult, run_audit
from app.core.cancel import CancelToken
from app.core.progress import Progress
from app.core.store import open_db

OutcomeJob = Generator[Progress, None, "AuditOutcome | None"]


class LazyModels:
    """The encoder and the pattern library, made on the audit thread the first time they are needed
    (torch is imported then) and kept for later runs. Not a QObject and holding no widget, so the
    worker's factory makes no reference cycle through the view."""

    def __init__(self, encoder: Encoder | None = None, library: PatternLibrary | None = None) -> None:
        self.encoder_made, self.library_made = encoder, library

    def encoder(self) -> Encoder:
        """The encoder, its model loaded (worker thread)."""
        if self.encoder_made is None:
            self.encoder_made = shared_encoder()  # one copy for every audit the window runs
        self.encoder_made.model()
        return self.encoder_made

    def library(self) -> PatternLibrary:
        """The pattern library (worker thread)."""
        if self.library_made is None:
            self.library_made = load_library()
        return self.library_made


@dataclass
class AuditOutcome:
    """What a job returns: the report, the map and the library used."""

    result: AuditResult
    map: MapData
    library: PatternLibrary


def audit_job(ledger_path: Path, encoder: Callable[[], Encoder], library: Callable[[], PatternLibrary],
              store: ProjectionStore, method: str = "pca"):
    """A generator factory: Progress items, then the AuditOutcome."""

    def run(cancel: CancelToken) -> OutcomeJob:
        yield Progress("starting", 0, 0)
        the_library = library()
        the_encoder = encoder()
        db = open_db(ledger_path)
        try:
            result = yield from run_audit(db, the_encoder, the_library, None, cancel)
            if result is None or cancel.cancelled:
                return None
            return (yield from _with_map(db, the_encoder, the_library, store, method, result, cancel))
        finally:
            db.close()

    return run


def map_job(ledger_path: Path, encoder: Callable[[], Encoder], result: AuditResult, library: PatternLibrary,
            store: ProjectionStore, method: str):
    """A generator factory: rebuild the map of an audit with `method`; Progress, then the AuditOutcome."""

    def run(cancel: CancelToken) -> OutcomeJob:
        yield Progress("map", 0, 0)
        the_encoder = encoder()
        db = open_db(ledger_path)
        try:
            return (yield from _with_map(db, the_encoder, library, store, method, result, cancel))
        finally:
            db.close()

    return run


def _with_map(db, encoder: Encoder, library: PatternLibrary, store: ProjectionStore, method: str,  # noqa: ANN001
              result: AuditResult, cancel: CancelToken) -> OutcomeJob:
    built = yield from build_map(db, encoder, library, store, method, result, cancel)
    return None if built is None or cancel.cancelled else AuditOutcome(result, built, library)


def refresh_job(ledger_path: Path, encoder: Callable[[], Encoder], library: PatternLibrary, store: ProjectionStore,
                previous: AuditOutcome):
    """A generator factory: fold the generations logged since `previous` into it (refresh_audit);
    Progress, then the AuditOutcome."""

    def run(cancel: CancelToken) -> OutcomeJob:
        yield Progress("refresh", 0, 0)
        the_encoder = encoder()
        db = open_db(ledger_path)
        try:
            refreshed = yield from refresh_audit(db, the_encoder, library, store, previous.result, previous.map,
                                                 cancel)
        finally:
            db.close()
        return None if refreshed is None or cancel.cancelled else AuditOutcome(refreshed.result, refreshed.map,
                                                                                 library)

    return run
