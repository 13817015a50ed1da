"""The Audit view's long job, as a generator for GeneratorThread: run the audit, then build the map.

Qt-free. It opens its own ledger connection (open_db, WAL) on the worker thread, because the audit
writes embeddings and scores. The encoder and the pattern library are made by the caller's factories
on that thread, so torch is imported only when the first audit runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlite_utils import Database

from app.core.audit.embeddings import Encoder, embed_missing, load_vectors, text_key
from app.core.audit.patterns import PatternLibrary
from app.core.audit.run import AuditProgress, AuditResult, run_audit
from app.core.cancel import CancelToken
from app.core.store import open_db
from app.ui.audit.projection import projection_for

EXCERPT_CHARS = 160


@dataclass
class MapData:
    """Everything the map draws: generation points and the library's exemplars, in 2-D."""

    generation_ids: list[int]
    workflows: list[str]
    top_patterns: list[str]
    top_scores: np.ndarray
    excerpts: list[str]
    points: np.ndarray
    exemplar_points: np.ndarray
    exemplar_patterns: list[str]
    pattern_names: dict[str, str] = field(default_factory=dict)


@dataclass
class AuditOutcome:
    """The last item the job yields: the report, the map and the library used."""

    result: AuditResult
    map: MapData
    library: PatternLibrary


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """One line of at most `limit` characters."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def build_map(db: Database, encoder: Encoder, library: PatternLibrary,
              cancel: CancelToken) -> Iterator[AuditProgress | MapData]:
    """Project the audited generations and the exemplars; yields progress, then MapData."""
    ids = library.pattern_ids
    exemplar_texts = [t for pid in ids for t in library.patterns[pid].exemplars]
    exemplar_patterns = [pid for pid in ids for _ in library.patterns[pid].exemplars]
    for progress in embed_missing(db, encoder, exemplar_texts, cancel):  # cached: usually nothing to do
        yield AuditProgress("map", progress.embedded, progress.missing)
    if cancel.cancelled:
        return
    rows = db.execute(
        "SELECT s.generation_id, s.workflow, s.text_key, s.scores, g.prompt, g.system_prompt "
        "FROM audit_scores s JOIN generations g ON g.id = s.generation_id "
        "WHERE s.library_hash = ? ORDER BY s.generation_id", [library.content_hash]).fetchall()
    exemplars = load_vectors(db, [text_key(t) for t in exemplar_texts], encoder.name)
    vectors = load_vectors(db, [r[2] for r in rows], encoder.name)
    projection = projection_for(library.content_hash, exemplars, vectors)
    scores = np.array([json.loads(r[3]) for r in rows], dtype=np.float64).reshape(len(rows), len(ids))
    top = scores.argmax(axis=1) if len(rows) else np.zeros(0, dtype=int)
    yield MapData(
        generation_ids=[int(r[0]) for r in rows], workflows=[r[1] for r in rows],
        top_patterns=[ids[i] for i in top],
        top_scores=scores[np.arange(len(rows)), top] if len(rows) else np.zeros(0),
        excerpts=[excerpt(r[4] or r[5] or "") for r in rows],
        points=projection.transform(vectors), exemplar_points=projection.transform(exemplars),
        exemplar_patterns=exemplar_patterns,
        pattern_names={pid: library.patterns[pid].name for pid in ids})


def audit_job(ledger_path: Path, encoder: Callable[[], Encoder], library: Callable[[], PatternLibrary]):
    """A generator factory: AuditProgress items, then one AuditOutcome (nothing more if cancelled)."""

    def run(cancel: CancelToken) -> Iterator[AuditProgress | AuditOutcome]:
        yield AuditProgress("starting", 0, 0)
        the_library = library()
        the_encoder = encoder()
        db = open_db(ledger_path)
        try:
            result: AuditResult | None = None
            for item in run_audit(db, the_encoder, the_library, None, cancel):
                if isinstance(item, AuditResult):
                    result = item
                else:
                    yield item
            if result is None or cancel.cancelled:
                return
            for item in build_map(db, the_encoder, the_library, cancel):
                if isinstance(item, MapData):
                    if not cancel.cancelled:
                        yield AuditOutcome(result, item, the_library)
                else:
                    yield item
        finally:
            db.close()

    return run
