"""Sub-streams: coherent groups inside one workflow, judged on their own.

Real users send everything under one key or one default workflow, so a harvest can be a minority
of its workflow. The groups are found without looking at the patterns (so that a few scattered odd
prompts never make a group): prompts that share a template signature (skeleton, first or last
words), a dense cluster of prompt embeddings, and a burst of requests close in time. Each group of
MIN_GROUP requests or more, and smaller than MAX_GROUP_SHARE of the workflow, is judged like a
workflow; a pattern the group resembles (MIN_GROUP_HITS hits or more, making up GROUP_HIT_SHARE of
the group) at `medium` or above is reported as that group, at `medium` at most (a minority of a
workflow is a lead to look at, not the workflow's character), unless the workflow as a whole is
already judged higher.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from app.core.audit.levels import LEVELS, judge
from app.core.audit.patterns import PatternLibrary
from app.core.audit.scorer import HIT_THRESHOLD
from app.core.audit.signals import workflow_signals
from app.core.audit.templates import SAMPLE, induce_grid

MIN_GROUP = 10
MAX_GROUP_SHARE = 0.8
MAX_GROUPS = 12
MIN_GROUP_HITS = 8
GROUP_HIT_SHARE = 0.5
SUBSTREAM_CAP = "medium"
CLUSTER_FLOOR = 0.3  # cosine below which two prompts are never neighbours, whatever the workflow
CLUSTER_SIGMAS = 2.0  # neighbours: similarity at least this many deviations above the workflow's mean
CLUSTER_NEIGHBOURS = 5
CLUSTER_SAMPLE = 250  # rows clustered at most (evenly spaced): an n x n similarity matrix per workflow
BURST_GAP_S = 600.0  # a burst ends at a pause longer than this
SAME_GROUP_JACCARD = 0.8
KIND_WORDS = {"template": "sharing a template", "cluster": "close in meaning", "burst": "sent in one burst"}


@dataclass
class SubStream:
    """A coherent group of a workflow's generations (indices into the workflow's rows)."""

    kind: str  # template | cluster | burst
    rows: list[int]
    sampled: bool = False  # found among the sampled rows only (clusters of a large workflow)
    sample: int = 0  # how many rows were sampled, when sampled


@dataclass
class SubStreamVerdict:
    """A pattern that a sub-stream resembles more than its whole workflow does."""

    kind: str
    pattern: str
    name: str
    level: str
    size: int
    of: int  # requests in the workflow (or in the sample the group was found in)
    hits: int
    first: str | None
    last: str | None
    sentence: str
    reasons: list[str] = field(default_factory=list)
    examples: list[int] = field(default_factory=list)
    generation_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form documented in docs/audit.md."""
        return {"kind": self.kind, "pattern": self.pattern, "name": self.name, "level": self.level,
                "size": self.size, "of": self.of, "hits": self.hits, "first": self.first, "last": self.last,
                "summary": self.sentence, "reasons": self.reasons, "example_generation_ids": self.examples,
                "generation_ids": self.generation_ids}


def _template_groups(keys: Sequence[Sequence[str | None]], n: int) -> list[list[int]]:
    """Rows that share any template signature, joined transitively (union-find)."""
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for column in keys:
        first: dict[str, int] = {}
        for i, key in enumerate(column):
            if key is None:
                continue
            if key in first:
                parent[find(i)] = find(first[key])
            else:
                first[key] = i
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        groups[find(i)].append(i)
    return list(groups.values())


def _cluster_groups(vectors: np.ndarray, positions: Sequence[int]) -> list[list[int]]:
    """Dense clusters of embeddings: core points (CLUSTER_NEIGHBOURS neighbours above the threshold)
    joined through their neighbours; `positions` maps vector rows to workflow rows."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    m = len(vectors)
    if m < MIN_GROUP:
        return []
    sims = vectors @ vectors.T
    pairs = m * (m - 1)
    mean = (float(sims.sum()) - float(np.trace(sims))) / pairs
    square = (float(np.square(sims).sum()) - float(np.square(np.diagonal(sims)).sum())) / pairs
    threshold = max(CLUSTER_FLOOR, mean + CLUSTER_SIGMAS * max(0.0, square - mean * mean) ** 0.5)
    near = sims >= threshold
    np.fill_diagonal(near, False)
    core = near.sum(axis=1) >= CLUSTER_NEIGHBOURS
    if not core.any():
        return []
    links = near & core[:, None] & core[None, :]
    count, labels = connected_components(csr_matrix(links), directed=False)
    groups: dict[int, set[int]] = defaultdict(set)
    for i in np.flatnonzero(core):
        groups[int(labels[i])].add(int(i))
    for i in np.flatnonzero(~core):  # a border point joins the cluster of its most similar core point
        candidates = np.flatnonzero(near[i] & core)
        if len(candidates):
            groups[int(labels[candidates[np.argmax(sims[i, candidates])]])].add(int(i))
    return [sorted(positions[i] for i in members) for members in groups.values()]


def _burst_groups(times: Sequence[str | None]) -> list[list[int]]:
    """Runs of requests with no pause longer than BURST_GAP_S between them."""
    stamped = sorted((datetime.fromisoformat(t).timestamp(), i) for i, t in enumerate(times) if t)
    groups: list[list[int]] = []
    current: list[int] = []
    previous = None
    for stamp, i in stamped:
        if previous is not None and stamp - previous > BURST_GAP_S:
            groups.append(current)
            current = []
        current.append(i)
        previous = stamp
    if current:
        groups.append(current)
    return groups


def find_substreams(times: Sequence[str | None], signatures: Sequence[Sequence[str | None]],
                    vectors: np.ndarray, positions: Sequence[int],
                    kinds: Sequence[str] = ("template", "cluster", "burst")) -> list[SubStream]:
    """Candidate groups of a workflow of len(times) rows: by template, embedding cluster and time
    (those of `kinds`).

    `signatures` are columns of per-row template keys; `vectors` are the embeddings of the rows at
    `positions` (all rows, or a sample). Groups too small or too large, and near-duplicates of a
    group already found, are dropped; at most MAX_GROUPS are returned.
    """
    n = len(times)
    if n < MIN_GROUP * 2:
        return []
    if len(positions) > CLUSTER_SAMPLE:
        keep = np.linspace(0, len(positions) - 1, CLUSTER_SAMPLE).astype(int)
        vectors, positions = vectors[keep], [positions[i] for i in keep]
    sampled = len(positions) < n
    candidates: list[SubStream] = []
    if "template" in kinds:
        candidates += [SubStream("template", g) for g in _template_groups(signatures, n)]
    if "cluster" in kinds:
        candidates += [SubStream("cluster", g, sampled, len(positions)) for g in _cluster_groups(vectors, positions)]
    if "burst" in kinds:
        candidates += [SubStream("burst", g) for g in _burst_groups(times)]
    found: list[tuple[SubStream, set[int]]] = []
    for group in sorted(candidates, key=lambda g: -len(g.rows)):
        whole = group.sample if group.sampled else n
        if not MIN_GROUP <= len(group.rows) < MAX_GROUP_SHARE * whole:
            continue
        rows = set(group.rows)
        if any(len(rows & seen) / len(rows | seen) >= SAME_GROUP_JACCARD for _, seen in found):
            continue
        found.append((group, rows))
        if len(found) == MAX_GROUPS:
            break
    return [group for group, _ in found]


def _clock(stamp: str | None) -> str:
    if not stamp:
        return "?"
    moment = datetime.fromisoformat(stamp)
    return moment.strftime("%H:%M")


def describe(group: SubStream, workflow: str, whole: int, first: str | None, last: str | None,
             name: str, level: str) -> str:
    """The one-line summary of a sub-stream verdict, every number computed from the group."""
    sample = " sampled" if group.sampled else ""
    day = ""
    if first and last and first[:10] != last[:10]:
        day = f" ({first[:10]} to {last[:10]})"
    elif first:
        day = f" on {first[:10]}"
    return (f"{len(group.rows)} of {whole}{sample} requests in \u2018{workflow}\u2019, "
            f"{KIND_WORDS[group.kind]}, sent between {_clock(first)} and {_clock(last)}{day}, "
            f"resemble {name.lower()}: {level}")


@dataclass
class WorkflowRows:
    """What aggregation read for one workflow, aligned by row: what judging its groups needs."""

    name: str
    ids: list[int]
    times: list[str]
    flags: list[int]
    signatures: list[list[str | None]]  # skeleton, prefix and suffix columns
    matrix: np.ndarray  # scores, rows x patterns
    vectors: np.ndarray  # embeddings of the rows at `positions`
    positions: list[int]
    total: int = 0  # rows in the workflow, when these are a sample of it (app.core.audit.workflow_state)


def judge_substreams(rows: WorkflowRows, library: PatternLibrary, levels_now: Mapping[str, str],
                     prompts_of: Callable[[list[int]], list[str]],
                     evidence_of: Callable[[list[int]], dict[int, dict[str, Any]]]) -> list[SubStreamVerdict]:
    """Judge every sub-stream of a workflow; return, per pattern, the group that resembles it most
    when that group's level (capped at SUBSTREAM_CAP) reaches SUBSTREAM_CAP and is at least the
    workflow's own (`levels_now`; a workflow already above the cap keeps its own reasons).

    `prompts_of(ids)` returns the prompts of generation ids (for template induction on a group);
    `evidence_of(ids)` the stored evidence of generation ids.
    """
    pattern_ids = library.pattern_ids
    cap = LEVELS.index(SUBSTREAM_CAP)
    # Which groups could matter: a pattern with MIN_GROUP_HITS hits in the workflow (any kind of
    # group), or one with a grid cue below the cap (a grid lives in a template's or cluster's prompts).
    hits_anywhere = ((rows.matrix >= HIT_THRESHOLD).sum(axis=0) >= MIN_GROUP_HITS).any() if len(rows.ids) else False
    grid_possible = any(LEVELS.index(levels_now[pid]) < cap and any(
        cue.signal == "grid_cells" for cue in library.patterns[pid].workflow_cues) for pid in pattern_ids)
    kinds = ("template", "cluster", "burst") if hits_anywhere else ("template",) if grid_possible else ()
    if not kinds:
        return []
    groups = find_substreams(rows.times, rows.signatures, rows.vectors, rows.positions, kinds)
    if rows.total > len(rows.ids):  # the rows are a sample of the workflow: every group was found in it
        for group in groups:
            if not group.sampled:
                group.sampled, group.sample = True, len(rows.ids)
    best: dict[str, SubStreamVerdict] = {}
    where = {p: i for i, p in enumerate(rows.positions)}
    for group in groups:
        members = group.rows
        scores = rows.matrix[members]
        hits = (scores >= HIT_THRESHOLD).sum(axis=0)
        wanted = [c for c, pid in enumerate(pattern_ids)
                  if hits[c] >= MIN_GROUP_HITS and hits[c] >= GROUP_HIT_SHARE * len(members)
                  and LEVELS.index(levels_now[pid]) <= cap]
        sweep_columns = [c for c, pid in enumerate(pattern_ids) if LEVELS.index(levels_now[pid]) < cap and any(
            cue.signal == "grid_cells" for cue in library.patterns[pid].workflow_cues)]
        grid = None
        one_skeleton = len({rows.signatures[0][i] for i in members}) == 1  # identical words: no grid
        if group.kind != "burst" and sweep_columns and not one_skeleton:
            step = max(1, len(members) // SAMPLE)
            grid = induce_grid(prompts_of([rows.ids[i] for i in members[::step]]))
            if grid.slots >= 2:
                wanted = sorted(set(wanted) | set(sweep_columns))
        if not wanted:
            continue
        vector_rows = [where[i] for i in members if i in where]
        signals = workflow_signals([rows.times[i] for i in members], [rows.flags[i] for i in members],
                                   *([column[i] for i in members] for column in rows.signatures),
                                   rows.vectors[vector_rows], grid)
        ids = [rows.ids[i] for i in members]
        for column in wanted:
            pid = pattern_ids[column]
            column_scores = scores[:, column]
            top = [ids[i] for i in np.argsort(-column_scores, kind="stable")[:3]]
            evidence = evidence_of(top)
            verdict = judge(library.patterns[pid], column_scores, ids, signals,
                            {gid: ev.get(pid, {}) for gid, ev in evidence.items()}, scope="group")
            level = LEVELS[min(cap, LEVELS.index(verdict.level))]
            if LEVELS.index(level) < max(cap, LEVELS.index(levels_now[pid])):
                continue
            if level == levels_now[pid] and verdict.hits < MIN_GROUP_HITS:
                continue  # no more concentrated than the whole workflow: the whole says it
            if pid in best and best[pid].hits >= verdict.hits:
                continue
            whole = group.sample if group.sampled else len(rows.ids)
            sentence = describe(group, rows.name, whole, signals.first, signals.last, verdict.name, level)
            best[pid] = SubStreamVerdict(group.kind, pid, verdict.name, level, len(members), whole, verdict.hits,
                                         signals.first, signals.last, sentence, verdict.reasons,
                                         verdict.examples or ids[:3], ids)
    return list(best.values())
