"""What the audit map and timeline draw, read from the ledger and placed with a cached projection.

Qt-free; runs on an audit worker thread with its own connection. build_map() fits a projection the
first time for a (library, method) and afterwards only places prompts it has not placed before.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
from sqlite_utils import Database

from app.core.audit.embeddings import Encoder, embed_missing, load_vectors, text_key
from app.core.audit.growing import Grown
from app.core.audit.map_geometry import appended
from app.core.audit.patterns import PatternLibrary
from app.core.audit.projection import READ_CHUNK, ProjectionStore, fit_projection_by_key
from app.core.audit.run import AuditResult, WorkflowAudit, embedding_stage
from app.core.audit.scorer import scores_key
from app.core.cancel import NEVER, CancelToken
from app.core.progress import Progress, drive

EXCERPT_CHARS = 160
PER_POINT = ("generation_ids", "workflows", "top_patterns", "excerpts", "models", "levels", "groups")
NO_MODEL = "(unknown model)"


@dataclass
class MapData:
    """Generation points and the library's exemplars in 2-D, with what colours and sizes them.

    Per generation (same order): generation_ids, workflows, models, started (UTC epoch seconds),
    scores (n x patterns, the pattern_ids order), top_patterns, top_scores, levels (its workflow's
    level for its top pattern), excerpts, points (n x 2), groups (its sub-stream, see substreams.py).
    The per-generation lists are held as columns that only grow (Grown), so that a refresh appends
    to them in time proportional to its new points."""

    generation_ids: Sequence[int]
    workflows: Sequence[str]
    top_patterns: Sequence[str]
    top_scores: np.ndarray
    excerpts: Sequence[str]
    points: np.ndarray
    exemplar_points: np.ndarray
    exemplar_patterns: list[str]
    pattern_names: dict[str, str] = field(default_factory=dict)
    models: Sequence[str] = field(default_factory=list)
    started: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    levels: Sequence[str] = field(default_factory=list)
    method: str = "pca"
    groups: Sequence[str] = field(default_factory=list)  # the sub-stream each point belongs to, or NO_GROUP

    def __post_init__(self) -> None:
        for name in PER_POINT:
            column = getattr(self, name)
            if not isinstance(column, Grown):
                setattr(self, name, Grown(column))

    @property
    def pattern_ids(self) -> list[str]:
        """Pattern ids in score-column order."""
        return list(self.pattern_names)


def extends(previous: MapData, data: MapData) -> bool:
    """Whether `data` is `previous` with points appended (what a refresh makes): the same exemplars
    and method, more points, the same first and last of the old ids in the same places."""
    n = len(previous.generation_ids)
    return (previous.exemplar_points is data.exemplar_points and previous.method == data.method
            and n > 0 and len(data.generation_ids) >= n and len(data.points) == len(data.generation_ids)
            and data.generation_ids[0] == previous.generation_ids[0]
            and data.generation_ids[n - 1] == previous.generation_ids[n - 1])


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """One line of at most `limit` characters."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def epoch_seconds(stamp: str | None) -> float:
    """A ledger timestamp (ISO 8601) as UTC epoch seconds (naive stamps are taken as UTC; 0 if absent)."""
    if not stamp:
        return 0.0
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _levels(result: AuditResult | None, workflows: list[str], tops: list[str]) -> list[str]:
    table = {(w.name, v.id): v.level for w in (result.workflows if result else []) for v in w.patterns}
    return [table.get((w, p), "none") for w, p in zip(workflows, tops)]


def build_map(db: Database, encoder: Encoder, library: PatternLibrary, store: ProjectionStore, method: str,
              result: AuditResult | None = None,
              cancel: CancelToken = NEVER) -> Generator[Progress, None, MapData | None]:
    """Project the audited generations and the exemplars; yields Progress, returns the MapData (None
    if cancelled). Fits `method` once per library; new prompts are placed with the fitted transform."""
    ids = library.pattern_ids
    exemplar_texts = [t for pid in ids for t in library.patterns[pid].exemplars]
    exemplar_patterns = [pid for pid in ids for _ in library.patterns[pid].exemplars]
    # cached: usually nothing to do
    yield from embedding_stage("map", embed_missing(db, encoder, exemplar_texts, cancel))
    if cancel.cancelled:
        return None
    columns = yield from _read_points(db, scores_key(library), len(ids), cancel)
    if columns is None:
        return None
    point_ids, workflows, point_keys, scores, excerpts, started, models = columns
    exemplar_keys = [text_key(t) for t in exemplar_texts]
    keys = exemplar_keys + point_keys
    projection = store.get(library.content_hash, method)
    if projection is not None and not projection.can_place(keys):
        projection = None  # coordinates saved without their model (UMAP): new prompts need a refit
    fresh = projection is None
    if projection is None:
        fitted = yield from fit_projection_by_key(method, keys, lambda some: load_vectors(db, some, encoder.name),
                                                  cancel, store.folder)
        if fitted is None or cancel.cancelled:
            return None
        store.put(library.content_hash, fitted)
        projection = fitted
    placed, missing = yield from place_keys(db, projection, keys, encoder, cancel)
    if placed is None or cancel.cancelled:
        return None
    if missing or fresh:
        store.save_coords(library.content_hash, method)
    n = len(point_ids)
    top = scores.argmax(axis=1) if n else np.zeros(0, dtype=int)
    top_patterns = [ids[i] for i in top]
    return MapData(
        generation_ids=point_ids, workflows=workflows, top_patterns=top_patterns,
        # the arrays in buffers with room to spare, as the columns: a refresh appends without a copy
        top_scores=_roomy(scores[np.arange(n), top].astype(np.float64) if n else np.zeros(0)),
        excerpts=excerpts, points=_roomy(placed[len(exemplar_keys):]), exemplar_points=placed[:len(exemplar_keys)],
        exemplar_patterns=exemplar_patterns, pattern_names={pid: library.patterns[pid].name for pid in ids},
        models=models, started=_roomy(started), scores=_roomy(scores), levels=_levels(result, workflows, top_patterns),
        method=method, groups=substream_labels(result, point_ids))


def _roomy(array: np.ndarray) -> np.ndarray:
    return appended(np.zeros((0, *array.shape[1:]), dtype=array.dtype), array)


def _read_points(db: Database, key: str, patterns: int, cancel: CancelToken) -> Generator[
        Progress, None, tuple[list[int], list[str], list[str], np.ndarray, list[str], np.ndarray, list[str]] | None]:
    """The audited generations' ids, workflows, text keys, scores, excerpts, start times and models,
    read READ_CHUNK rows at a time (a prompt is held only until its excerpt is cut)."""
    total = db.execute("SELECT count(*) FROM audit_scores WHERE scores_key = ?", [key]).fetchone()[0]
    point_ids: list[int] = []
    workflows: list[str] = []
    keys: list[str] = []
    excerpts: list[str] = []
    models: list[str] = []
    scores = np.zeros((total, patterns), dtype=np.float32)
    started = np.zeros(total)
    cursor = db.execute(
        "SELECT s.generation_id, s.workflow, s.text_key, s.scores, g.prompt, g.system_prompt, s.started_at, "
        "g.model_name FROM audit_scores s JOIN generations g ON g.id = s.generation_id "
        "WHERE s.scores_key = ? ORDER BY s.generation_id", [key])
    while rows := cursor.fetchmany(READ_CHUNK):
        if cancel.cancelled:
            return None
        at, n = len(point_ids), len(rows)
        if at + n > len(scores):  # rows scored since the count (another writer): room for them
            scores = np.concatenate([scores, np.zeros((at + n - len(scores), patterns), dtype=np.float32)])
            started = np.concatenate([started, np.zeros(at + n - len(started))])
        scores[at:at + n] = np.array([json.loads(r[3]) for r in rows], dtype=np.float32).reshape(n, patterns)
        started[at:at + n] = [epoch_seconds(r[6]) for r in rows]
        point_ids += [int(r[0]) for r in rows]
        workflows += [r[1] for r in rows]
        keys += [r[2] for r in rows]
        excerpts += [excerpt(r[4] or r[5] or "") for r in rows]
        models += [r[7] or NO_MODEL for r in rows]
        yield Progress("map", len(point_ids), max(total, len(point_ids)))
    n = len(point_ids)
    return point_ids, workflows, keys, scores[:n], excerpts, started[:n], models


NO_GROUP = "(no sub-stream)"


def substream_labels(result: AuditResult | None, generation_ids: Sequence[int]) -> list[str]:
    """Each generation's sub-stream ("workflow: pattern (kind)"), or NO_GROUP."""
    member = group_members(result.workflows if result else [])
    return [member.get(gid, NO_GROUP) for gid in generation_ids]


def group_members(workflows: Sequence[WorkflowAudit]) -> dict[int, str]:
    """The sub-stream label of each generation in a sub-stream of these workflows."""
    member: dict[int, str] = {}
    for workflow in workflows:
        for group in workflow.substreams:
            label = f"{workflow.name}: {group.name.lower()} ({group.size}, {group.kind})"
            for gid in group.generation_ids:
                member.setdefault(gid, label)
    return member


def place_keys(db: Database, projection: Any, keys: list[str], encoder: Encoder,
               cancel: CancelToken = NEVER) -> Generator[Progress, None, tuple[Any, list[int]]]:
    """Place texts (by key) with a fitted projection, reading vectors (READ_CHUNK at a time) only
    for those it has no coordinates for yet; returns (the placed coordinates or None when
    cancelled, the indexes read)."""
    placed = np.zeros((len(keys), 2))
    missing = []
    for i, key in enumerate(keys):
        known = projection.coords.get(key)
        if known is None:
            missing.append(i)
        else:
            placed[i] = known
    for start in range(0, len(missing), READ_CHUNK):
        part = missing[start:start + READ_CHUNK]
        some = [keys[i] for i in part]
        chunk = drive(projection.place(some, load_vectors(db, some, encoder.name), cancel))
        if chunk is None:
            return None, missing
        placed[part] = chunk
        yield Progress("placing", min(len(missing), start + READ_CHUNK), len(missing))
    if cancel.cancelled:
        return None, missing
    return placed, missing
