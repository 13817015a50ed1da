"""Refresh a shown audit after new generations, in proportion to what is new.

A full audit (run_audit) re-reads every scored row of every workflow and build_map every point. A
refresh starts from the previous AuditResult and MapData instead: it reads only the generations
after the previous run's high-water mark (`AuditResult.scored_through`, a primary-key range),
embeds and scores those, re-judges only the workflows they belong to, keeps every other workflow's
audit as it was, and appends the new points to the map (placed with the fitted projection). A
touched workflow is judged again by folding its new rows into its stored running aggregates
(app.core.audit.workflow_state), so the work is proportional to the new rows, plus a bounded
sample's sub-streams, diversity or template grid when a new row enters that sample.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass, replace

import numpy as np
from sqlite_utils import Database

from app.core.audit.embeddings import Encoder
from app.core.audit.growing import Grown
from app.core.audit.map_data import (
    NO_GROUP,
    NO_MODEL,
    MapData,
    epoch_seconds,
    excerpt,
    group_members,
    place_keys,
)
from app.core.audit.map_geometry import appended
from app.core.audit.patterns import PatternLibrary
from app.core.audit.projection import ProjectionStore
from app.core.audit.run import (
    NO_WORKFLOW,
    AuditResult,
    WorkflowAudit,
    aggregate,
    fitted_scorer,
    ledger_mark,
    score_rows,
    unscored_rows,
)
from app.core.audit.scorer import scores_key
from app.core.cancel import NEVER, CancelToken
from app.core.progress import Progress


@dataclass
class Refreshed:
    """What refresh_audit returns: the new result and map, and how many generations were new."""

    result: AuditResult
    map: MapData
    new_rows: int
    workflows_judged: list[str]


def can_refresh(result: AuditResult | None, map_data: MapData | None, store: ProjectionStore) -> bool:
    """Whether a previous audit can be refreshed incrementally: it covered the whole ledger (has a
    high-water mark) and its map's projection can place new prompts."""
    if result is None or map_data is None or result.scored_through is None:
        return False
    projection = store.get(result.library_hash, map_data.method)
    return projection is not None and projection.model is not None


def refresh_audit(db: Database, encoder: Encoder, library: PatternLibrary, store: ProjectionStore,
                  previous: AuditResult, previous_map: MapData,
                  cancel: CancelToken = NEVER) -> Generator[Progress, None, Refreshed | None]:
    """Score the generations after `previous.scored_through` and fold them into the previous result
    and map; yields Progress, returns a Refreshed (None if cancelled).

    Runs on the caller's thread (an audit worker) and writes embeddings and scores through `db`.
    Raises ValueError when `previous` cannot be refreshed (see can_refresh)."""
    if previous.scored_through is None or previous.library_hash != library.content_hash:
        raise ValueError("this audit cannot be refreshed incrementally; run the whole audit")
    projection = store.get(library.content_hash, previous_map.method)
    if projection is None or projection.model is None:
        raise ValueError("the map's projection cannot place new prompts; run the whole audit")
    scorer = yield from fitted_scorer(db, encoder, library, cancel)
    if scorer is None:
        return None
    mark = ledger_mark(db)
    rows = unscored_rows(db, scores_key(library), after=previous.scored_through)
    if rows:
        yield from score_rows(db, encoder, scorer, rows, cancel)
    if cancel.cancelled:
        return None
    touched = sorted({row.get("workflow") or NO_WORKFLOW for row in rows})
    judged: dict[str, WorkflowAudit] = {}
    if touched:
        for item in aggregate(db, scorer, encoder.name, touched, cancel):
            if isinstance(item, WorkflowAudit):
                judged[item.name] = item
            else:
                yield item
    if cancel.cancelled:
        return None
    kept = {workflow.name: workflow for workflow in previous.workflows}
    kept.update(judged)
    backend = encoder.loaded()
    result = replace(previous, workflows=[kept[name] for name in sorted(kept)], newly_scored=len(rows),
                     scored_through=max(mark, previous.scored_through),
                     embedding_backend=backend.name if backend else previous.embedding_backend,
                     embedding_file_sha256=backend.file_sha256 if backend else previous.embedding_file_sha256)
    before = {w.name: [v.level for v in w.patterns] for w in previous.workflows}
    relevelled = {name for name, audit in judged.items() if before.get(name) != [v.level for v in audit.patterns]}
    groups_before = {w.name: w for w in previous.workflows}
    regrouped = [(groups_before.get(name), audit) for name, audit in judged.items()
                 if name not in groups_before or groups_before[name].substreams != audit.substreams]
    map_data = yield from _extend_map(db, encoder, library, projection, previous_map, result,
                                      [int(row["id"]) for row in rows], relevelled, regrouped, cancel)
    if map_data is None:
        return None
    return Refreshed(result, map_data, len(rows), touched)


def _extend_map(db: Database, encoder: Encoder, library: PatternLibrary, projection, previous: MapData,  # noqa: ANN001
                result: AuditResult, new_ids: list[int], touched: set[str],
                regrouped: list[tuple[WorkflowAudit | None, WorkflowAudit]],
                cancel: CancelToken) -> Generator[Progress, None, MapData | None]:
    """The previous map with the new generations appended (placed with the fitted projection): its
    per-point columns grow in place, so this takes time in proportion to the new points. Only when
    a workflow's levels changed (`touched`, usually none) are its points' levels brought up to date,
    the one pass over every point; when workflows' sub-streams changed (`regrouped`: (before, after)
    pairs), the points they held or hold now are labelled again."""
    key = scores_key(library)
    rows = []
    for start in range(0, len(new_ids), 500):
        chunk = new_ids[start:start + 500]
        rows += db.execute(
            "SELECT s.generation_id, s.workflow, s.text_key, s.scores, g.prompt, g.system_prompt, s.started_at, "
            f"g.model_name FROM audit_scores s JOIN generations g ON g.id = s.generation_id WHERE s.scores_key = ? "
            f"AND s.generation_id IN ({','.join('?' for _ in chunk)}) ORDER BY s.generation_id", [key, *chunk]).fetchall()
    ids = library.pattern_ids
    keys = [r[2] for r in rows]
    placed, _ = yield from place_keys(db, projection, keys, encoder, cancel)
    if placed is None or cancel.cancelled:
        return None
    scores = np.array([json.loads(r[3]) for r in rows], dtype=np.float32).reshape(len(rows), len(ids))
    top = scores.argmax(axis=1) if len(rows) else np.zeros(0, dtype=int)
    workflows = [r[1] for r in rows]
    named = touched | set(workflows)
    levels_by = {(w.name, v.id): v.level for w in result.workflows if w.name in named for v in w.patterns}
    levels = previous.levels
    if touched:  # only the touched workflows' points' levels can have changed (found in C, then set)
        levels = levels.replaced({int(at): levels_by.get((previous.workflows[at], previous.top_patterns[at]), "none")
                                  for at in previous.workflows.positions_of(touched)})
    tops = [ids[i] for i in top]
    added = [int(r[0]) for r in rows]
    yield Progress("map", len(rows), len(rows))
    return replace(
        previous, generation_ids=previous.generation_ids.extended(added),
        workflows=previous.workflows.extended(workflows), top_patterns=previous.top_patterns.extended(tops),
        # the arrays grow in buffers with room to spare (appended): a refresh copies only its new rows
        top_scores=appended(np.asarray(previous.top_scores, dtype=np.float64),
                            scores[np.arange(len(rows)), top].astype(np.float64)),
        excerpts=previous.excerpts.extended(excerpt(r[4] or r[5] or "") for r in rows),
        points=appended(previous.points.reshape(-1, 2), np.asarray(placed, dtype=previous.points.dtype).reshape(-1, 2)),
        models=previous.models.extended(r[7] or NO_MODEL for r in rows),
        started=appended(np.asarray(previous.started, dtype=np.float64), np.array([epoch_seconds(r[6]) for r in rows])),
        scores=appended(previous.scores.reshape(-1, len(ids)), scores.astype(previous.scores.dtype)),
        levels=levels.extended(levels_by.get((w, p), "none") for w, p in zip(workflows, tops)),
        groups=_regroup(previous, regrouped).extended(_labels(result, set(workflows), added))
        if len(previous.groups) == len(previous.generation_ids) else previous.groups)


def _labels(result: AuditResult, workflows: set[str], ids: list[int]) -> list[str]:
    """The sub-stream labels of new points of these workflows (only their groups are looked at)."""
    member = group_members([w for w in result.workflows if w.name in workflows])
    return [member.get(gid, NO_GROUP) for gid in ids]


def _regroup(previous: MapData, regrouped: list[tuple[WorkflowAudit | None, WorkflowAudit]]) -> Grown[str]:
    """The previous points' sub-stream labels with those of the points that were or now are in a
    sub-stream of a regrouped workflow brought up to date (their labels carry the groups' sizes)."""
    if not regrouped:
        return previous.groups
    now = group_members([after for _, after in regrouped])
    was = group_members([before for before, _ in regrouped if before is not None])
    changes = {}
    for gid in was.keys() | now.keys():
        position = previous.generation_ids.position(gid)  # the map's ids are in ascending order
        if position is not None:
            changes[position] = now.get(gid, NO_GROUP)
    return previous.groups.replaced(changes)
