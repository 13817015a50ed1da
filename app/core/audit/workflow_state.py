"""A workflow's running aggregates: what its judgement needs, kept so that new rows fold in.

`build` reads every scored row of a workflow once; `fold` adds the rows scored since (generation
ids above `through`) with work proportional to them; `finish` judges the workflow from the state.
fold(build(rows), new) holds exactly what build(rows + new) holds, so both give the same audit:

- counts: rows, each flag bit, each pattern's hits, the models (by how they were identified);
- each pattern's EXAMPLES best (score, generation id) pairs, highest first, the earlier row on ties;
- first and last start time (string order, as workflow_signals takes them);
- the busiest hour: folded when every new start time is at or after the last one and all the
  workflow's times are in the ledger's own format (UTC, microseconds), by counting the hour before
  each new time through the (scores_key, workflow, started_at) index; otherwise recomputed from the
  workflow's start times (one column);
- template reuse (rows sharing a skeleton, first or last words with another row): folded row by
  row through the signature indexes; a new row that is the second carrier of a signature makes
  its first carrier a reused one too;
- a sample of at most SAMPLE rows: every row of a smaller workflow, else the SAMPLE rows whose
  generation id hashes lowest (splitmix64), so a new row enters it only when its hash does (SAMPLE
  in `rows` of the time). Its lowest DIVERSITY_SAMPLE rows give semantic diversity (and the
  clusters' vectors), its lowest GRID_SAMPLE rows template induction (every row below
  2 x GRID_SAMPLE), and the whole sample the sub-streams (groups of a larger workflow are then
  said to be found in a sample). Those three are re-run only when their rows (or, for
  sub-streams, the workflow's levels) changed, so most new rows re-run none of them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlite_utils import Database

from app.core.audit.embeddings import load_vectors
from app.core.audit.levels import EXAMPLES, judge_counts
from app.core.audit.patterns import PatternLibrary
from app.core.audit.scorer import HIT_THRESHOLD
from app.core.audit.signals import (
    DIVERSITY_SAMPLE,
    FLAG_LOGPROB,
    FLAG_MAX1,
    FLAG_REASONING,
    FLAG_GRADING,
    FLAG_REFUSAL,
    FLAG_TOOL,
    FLAG_TOOL_CALL,
    WorkflowSignals,
    busiest_hour,
    semantic_diversity,
    template_reuse_share,
)
from app.core.audit.substreams import SubStreamVerdict, WorkflowRows, judge_substreams
from app.core.audit.templates import SAMPLE as GRID_SAMPLE
from app.core.audit.templates import GridEvidence, induce_grid

SAMPLE = 2000
BITS = (FLAG_REASONING, FLAG_GRADING, FLAG_LOGPROB, FLAG_MAX1, FLAG_TOOL, FLAG_REFUSAL, FLAG_TOOL_CALL)
SIGNATURES = ("skeleton", "prefix_sig", "suffix_sig")
ROW_COLUMNS = "generation_id, started_at, text_key, scores, flags, skeleton, prefix_sig, suffix_sig, rowid"
HOUR = 3600.0
Prompts = Callable[[Sequence[int]], list[str]]
Evidence = Callable[[Sequence[int]], dict[int, dict[str, Any]]]


def row_hash(ids: Sequence[int]) -> np.ndarray:
    """splitmix64 of generation ids: the order the sample is drawn in."""
    with np.errstate(over="ignore"):
        z = np.asarray(ids, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _canonical(stamp: str | None) -> bool:
    """Whether a start time is in the ledger's own format (UTC, microseconds): then string order is time order."""
    if not stamp:
        return False
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return False
    return moment.utcoffset() == timedelta(0) and moment.isoformat(timespec="microseconds") == stamp


_MODEL_COLUMNS = (
    "SELECT coalesce(json_extract(g.meta, '$.proxy.identity.method'), "
    "CASE WHEN g.model_sha256 IS NOT NULL THEN 'gguf-sha256' ELSE 'unknown' END), "
    "coalesce(g.model_name, g.model_sha256, ''), coalesce(g.model_sha256, json_extract(g.meta, "
    "'$.proxy.identity.value')), count(*) FROM generations AS g ")


def _models(db: Database, key: str, workflow: str, ids: Sequence[int] | None = None) -> list[list[Any]]:
    """Counts per model of the workflow's scored rows (of generation `ids` only, when given)."""
    if ids is None:
        return [list(row) for row in db.execute(
            _MODEL_COLUMNS + "JOIN audit_scores AS a ON a.generation_id = g.id WHERE a.scores_key = ? "
            "AND a.workflow = ? GROUP BY 1, 2, 3", [key, workflow]).fetchall()]
    found: list[list[Any]] = []
    for start in range(0, len(ids), 900):
        part = list(ids[start:start + 900])
        found += [list(row) for row in db.execute(
            _MODEL_COLUMNS + f"WHERE g.id IN ({','.join('?' for _ in part)}) GROUP BY 1, 2, 3", part).fetchall()]
    return found


def _merge_models(old: list[list[Any]], new: list[list[Any]]) -> list[list[Any]]:
    counts: dict[tuple[Any, Any, Any], int] = {}
    for how, name, value, count in [*old, *new]:
        counts[(how, name, value)] = counts.get((how, name, value), 0) + count
    return sorted(([*k, c] for k, c in counts.items()), key=lambda m: (-m[3], m[1], m[0], str(m[2])))


def _best(pairs: list[list[Any]]) -> list[list[Any]]:
    return sorted(pairs, key=lambda p: (-p[0], p[1]))[:EXAMPLES]


def build(db: Database, key: str, workflow: str, patterns: int) -> dict[str, Any]:
    """The state of a workflow from every one of its scored rows."""
    rows = db.execute(f"SELECT {ROW_COLUMNS} FROM audit_scores WHERE scores_key = ? AND workflow = ? "
                      "ORDER BY generation_id", [key, workflow]).fetchall()
    ids = [r[0] for r in rows]
    matrix = np.array([json.loads(r[3]) for r in rows], dtype=np.float64).reshape(len(rows), patterns)
    times = [r[1] for r in rows]
    ordered = sorted(t for t in times if t)
    flags = np.array([r[4] for r in rows], dtype=np.int64)
    best = []
    for column in range(patterns):
        order = np.argsort(-matrix[:, column], kind="stable")[:EXAMPLES]
        best.append([[float(matrix[i, column]), int(ids[i])] for i in order])
    hashes = row_hash(ids)
    low = np.argsort(hashes, kind="stable")[:SAMPLE]
    reuse = template_reuse_share([r[5] for r in rows], [r[6] for r in rows], [r[7] for r in rows])
    return {"n": len(rows), "through": max(ids, default=0), "last_rowid": max((r[8] for r in rows), default=0),
            "flags": [int(((flags & bit) != 0).sum()) for bit in BITS],
            "hits": [int(h) for h in (matrix >= HIT_THRESHOLD).sum(axis=0)], "best": best,
            "first": ordered[0] if ordered else None, "last": ordered[-1] if ordered else None,
            "busiest": busiest_hour(ordered), "canonical": all(_canonical(t) for t in times),
            "reused": round(reuse * len(rows)), "models": _merge_models([], _models(db, key, workflow)),
            "sample": sorted([[int(hashes[i]), int(ids[i])] for i in low]), "cache": {}}


def fold(db: Database, key: str, workflow: str, state: dict[str, Any], patterns: int) -> dict[str, Any]:
    """The state with the workflow's rows scored after state['through'] added, in id order."""
    # by the primary key's id range (what is new), not the workflow's index (every row of the workflow)
    rows = db.execute(f"SELECT {ROW_COLUMNS} FROM audit_scores WHERE generation_id > ? AND +scores_key = ? "
                      "AND +workflow = ? ORDER BY generation_id", [state["through"], key, workflow]).fetchall()
    if not rows:
        return state
    state = {**state, "flags": list(state["flags"]), "hits": list(state["hits"]),
             "best": [list(pairs) for pairs in state["best"]]}
    times = [r[1] for r in rows]
    ordered = sorted(t for t in times if t)
    in_order = bool(ordered) and len(ordered) == len(times) and (state["last"] is None or ordered[0] >= state["last"])
    canonical = state["canonical"] and all(_canonical(t) for t in times)
    for gid, _, _, scores_text, flags, *_ in rows:
        scores = json.loads(scores_text)
        for column, score in enumerate(scores[:patterns]):
            if score >= HIT_THRESHOLD:
                state["hits"][column] += 1
            state["best"][column] = _best([*state["best"][column], [float(score), int(gid)]])
        for index, bit in enumerate(BITS):
            if flags & bit:
                state["flags"][index] += 1
    state["reused"] += _reuse_added(db, key, workflow, rows)
    if canonical and in_order:
        busiest = state["busiest"]
        for stamp in ordered:
            busiest = max(busiest, _hour_before(db, key, workflow, stamp))
    else:
        everything = sorted(t for (t,) in db.execute(
            "SELECT started_at FROM audit_scores WHERE scores_key = ? AND workflow = ? AND started_at IS NOT NULL",
            [key, workflow]).fetchall())
        busiest = busiest_hour(everything)
    hashes = row_hash([r[0] for r in rows])
    sample = sorted([*state["sample"], *([int(h), int(r[0])] for h, r in zip(hashes, rows))])[:SAMPLE]
    known = [t for t in (state["first"], state["last"], *ordered) if t]
    models = _merge_models(state["models"], _models(db, key, workflow, [r[0] for r in rows]))
    state.update(n=state["n"] + len(rows), through=int(rows[-1][0]), last_rowid=max(state["last_rowid"],
                 *(r[8] for r in rows)), first=min(known) if known else None, last=max(known) if known else None,
                 busiest=busiest, canonical=canonical, sample=sample, models=models)
    return state


def _hour_before(db: Database, key: str, workflow: str, stamp: str) -> int:
    """Rows of the workflow started in the hour up to `stamp` (inclusive), as busiest_hour counts them."""
    end = datetime.fromisoformat(stamp)
    floor = (end - timedelta(seconds=HOUR + 1)).isoformat(timespec="microseconds")
    near = db.execute("SELECT started_at FROM audit_scores WHERE scores_key = ? AND workflow = ? AND started_at >= ? "
                      "AND started_at <= ?", [key, workflow, floor, stamp]).fetchall()
    top = end.timestamp()
    return sum(1 for (t,) in near if top - datetime.fromisoformat(t).timestamp() <= HOUR)


def _reuse_added(db: Database, key: str, workflow: str, rows: list[tuple[Any, ...]]) -> int:
    """How many rows become template-reused as `rows` (new, in id order) join the workflow."""
    added = 0

    def others(column: str, value: str, before: int, besides: int | None = None) -> list[int]:
        return [gid for (gid,) in db.execute(
            f"SELECT generation_id FROM audit_scores WHERE scores_key = ? AND workflow = ? AND {column} = ? "
            "AND generation_id < ? AND generation_id IS NOT ? LIMIT 2", [key, workflow, value, before, besides])]

    for row in rows:
        gid, signatures = row[0], row[5:8]
        reused, newly = False, set()
        for column, value in zip(SIGNATURES, signatures):
            if value is None:
                continue
            earlier = others(column, value, gid)
            reused = reused or bool(earlier)
            if len(earlier) == 1 and earlier[0] not in newly:
                first = earlier[0]
                theirs = db.execute("SELECT skeleton, prefix_sig, suffix_sig FROM audit_scores WHERE scores_key = ? "
                                    "AND generation_id = ?", [key, first]).fetchone()
                if not any(v is not None and others(c, v, gid, first) for c, v in zip(SIGNATURES, theirs)):
                    newly.add(first)
        added += len(newly) + int(reused)
    return added


def sample_ids(state: dict[str, Any], size: int) -> list[int]:
    """The generation ids of the `size` lowest-hashing rows of the sample, in id order."""
    return sorted(gid for _, gid in state["sample"][:size])


def _cached(state: dict[str, Any], name: str, inputs: Any, compute: Callable[[], Any]) -> Any:  # noqa: ANN401
    """compute() unless the state holds its value for the same inputs."""
    digest = hashlib.sha256(json.dumps(inputs).encode()).hexdigest()
    held = state["cache"].get(name)
    if held and held[0] == digest:
        return held[1]
    value = compute()
    state["cache"] = {**state["cache"], name: [digest, value]}
    return value


def finish(db: Database, key: str, encoder_name: str, library: PatternLibrary, workflow: str,
           state: dict[str, Any], prompts_of: Prompts, evidence_of: Evidence) -> tuple[WorkflowSignals, list, list]:
    """The workflow's signals, verdicts and sub-stream verdicts from its state (the sample's parts
    re-run only when their rows changed); `state['cache']` is updated."""
    n = state["n"]
    grid_ids = sample_ids(state, SAMPLE if n < 2 * GRID_SAMPLE else GRID_SAMPLE)  # every row, below 2 x GRID_SAMPLE
    grid = _cached(state, "grid", grid_ids, lambda: vars(induce_grid(prompts_of(grid_ids))))
    diversity_ids = sample_ids(state, DIVERSITY_SAMPLE)
    diversity = _cached(state, "diversity", [encoder_name, diversity_ids], lambda: semantic_diversity(
        _vectors(db, key, encoder_name, diversity_ids)))
    first, last = state["first"], state["last"]
    span = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds() / 3600 if first and last \
        and first != last else 0.0
    counts = dict(zip(BITS, state["flags"]))
    grid_evidence = GridEvidence(**grid)
    extra: dict[str, Any] = {}
    if grid_evidence.slots >= 2:
        extra = {"grid_slots": grid_evidence.slots, "grid_cells": grid_evidence.covered,
                 "grid_size": grid_evidence.cells, "grid_coverage": grid_evidence.coverage,
                 "template_family_share": grid_evidence.family_share, "grid_values": grid_evidence.values}
    signals = WorkflowSignals(
        volume=n, rate_per_hour=state["busiest"], active_span_hours=span, first=first, last=last,
        template_reuse_share=state["reused"] / n if n else 0.0, semantic_diversity=diversity,
        reasoning_share=counts[FLAG_REASONING] / n, grading_share=counts[FLAG_GRADING] / n,
        logprob_share=counts[FLAG_LOGPROB] / n, max_tokens_1_share=counts[FLAG_MAX1] / n,
        tool_share=counts[FLAG_TOOL] / n, refusal_share=counts[FLAG_REFUSAL] / n,
        tool_requests=counts[FLAG_TOOL], tool_call_answers=counts[FLAG_TOOL_CALL], **extra)
    verdicts = []
    for column, pid in enumerate(library.pattern_ids):
        best = [(float(score), int(gid)) for score, gid in state["best"][column]]
        evidence = evidence_of([gid for _, gid in best])
        verdicts.append(judge_counts(library.patterns[pid], n, state["hits"][column], best, signals,
                                     {gid: ev.get(pid, {}) for gid, ev in evidence.items()}))
    levels = {v.id: v.level for v in verdicts}
    sample = sample_ids(state, SAMPLE)
    groups = _cached(state, "substreams", [encoder_name, sample, sorted(levels.items())], lambda: [vars(g) for g in (
        _substreams(db, key, encoder_name, library, workflow, n, sample, diversity_ids, levels, prompts_of,
                    evidence_of))])
    return signals, verdicts, [SubStreamVerdict(**group) for group in groups]


def _vectors(db: Database, key: str, encoder_name: str, ids: list[int]) -> np.ndarray:
    text_keys = _column(db, key, ids, "text_key")
    return load_vectors(db, [text_keys[i] for i in ids], encoder_name)


def _column(db: Database, key: str, ids: list[int], column: str) -> dict[int, Any]:
    found: dict[int, Any] = {}
    for start in range(0, len(ids), 900):
        part = ids[start:start + 900]
        found.update(db.execute(f"SELECT generation_id, {column} FROM audit_scores WHERE scores_key = ? AND "
                                f"generation_id IN ({','.join('?' for _ in part)})", [key, *part]).fetchall())
    return found


def _substreams(db: Database, key: str, encoder_name: str, library: PatternLibrary, workflow: str, n: int,
                sample: list[int], diversity_ids: list[int], levels: dict[str, str], prompts_of: Prompts,
                evidence_of: Evidence) -> list[SubStreamVerdict]:
    """Sub-streams of the sample's rows (every row of a workflow of at most SAMPLE rows)."""
    rows = {}
    for start in range(0, len(sample), 900):
        part = sample[start:start + 900]
        for row in db.execute(f"SELECT {ROW_COLUMNS} FROM audit_scores WHERE scores_key = ? AND "
                              f"generation_id IN ({','.join('?' for _ in part)})", [key, *part]).fetchall():
            rows[row[0]] = row
    ordered = [rows[gid] for gid in sample]
    matrix = np.array([json.loads(r[3]) for r in ordered], dtype=np.float64).reshape(len(ordered), -1)
    where = {gid: i for i, gid in enumerate(sample)}
    positions = [where[gid] for gid in diversity_ids]
    vectors = load_vectors(db, [ordered[i][2] for i in positions], encoder_name)
    data = WorkflowRows(workflow, sample, [r[1] for r in ordered], [r[4] for r in ordered],
                        [[r[5] for r in ordered], [r[6] for r in ordered], [r[7] for r in ordered]], matrix,
                        vectors, positions, total=n)
    return judge_substreams(data, library, levels, prompts_of, evidence_of)
