"""The audit: an incremental generator over the ledger.

Stages (each yields Progress): embed the library's exemplars (cached), fit the scorer, embed
the prompts of generations not yet audited with this library version, score them and store scores,
evidence, flags and template signatures in audit_scores; then aggregate every workflow into
signals and per-pattern verdicts (the AuditResult it returns). A second run over an unchanged ledger embeds and
scores nothing: it only re-aggregates from the stored results.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlite_utils import Database

from app.core.audit.embeddings import Encoder, embed_missing, load_vectors, text_key
from app.core.audit.encoders import MultilingualEncoder, shared_multilingual_encoder
from app.core.audit.levels import PatternVerdict, judge, lookalike_dicts
from app.core.audit.patterns import PatternLibrary
from app.core.audit.routing import route
from app.core.audit.scorer import Scorer, scores_key
from app.core.audit.translations import multilingual_view
from app.core.audit.substreams import SubStreamVerdict, WorkflowRows, judge_substreams
from app.core.audit.templates import SAMPLE as GRID_SAMPLE
from app.core.audit.templates import induce_grid
from app.core.audit.signals import (
    WorkflowSignals,
    audit_text,
    generation_flags,
    request_params,
    template_signatures,
    workflow_signals,
)
from app.core.cancel import NEVER, CancelToken
from app.core.progress import Progress
from app.core.store.db import translate_errors
from app.core.store.queries import decode_row

SCORE_BATCH = 2000
NO_WORKFLOW = "(no workflow)"
_SCORERS: dict[tuple[str, str], Scorer] = {}


@dataclass
class WorkflowAudit:
    """One workflow's audit: its signals and a verdict for every pattern."""

    name: str
    generations: int
    signals: WorkflowSignals
    patterns: list[PatternVerdict]
    models: list[dict[str, Any]] = field(default_factory=list)
    substreams: list[SubStreamVerdict] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form documented in docs/audit.md."""
        return {"name": self.name, "generations": self.generations, "signals": self.signals.as_dict(),
                "patterns": [verdict.as_dict() for verdict in self.patterns], "models": self.models,
                "substreams": [group.as_dict() for group in self.substreams]}


@dataclass
class AuditResult:
    """What run_audit returns."""

    library_version: str
    library_hash: str
    embedding_model: str
    workflows: list[WorkflowAudit] = field(default_factory=list)
    newly_scored: int = 0
    # What computed this process's vectors (e.g. onnxruntime-int8-cpu) and the sha256 of the exported model
    # file it ran; None when nothing needed embedding and the model was never loaded.
    embedding_backend: str | None = None
    embedding_file_sha256: str | None = None
    # The model that scored the prompts in other languages, and how many of this run's new prompts it
    # scored (app.core.audit.routing); None when no prompt needed it.
    multilingual_model: str | None = None
    multilingual_scored: int = 0
    # The highest generation id the run looked at, when it covered the whole ledger: a refresh
    # (app.core.audit.refresh) reads only the generations after it. None for a run over some workflows.
    scored_through: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON report."""
        return {"library_version": self.library_version, "library_hash": self.library_hash,
                "embedding_model": self.embedding_model, "embedding_backend": self.embedding_backend,
                "embedding_file_sha256": self.embedding_file_sha256, "newly_scored": self.newly_scored,
                "multilingual_model": self.multilingual_model, "multilingual_scored": self.multilingual_scored,
                "workflows": [workflow.as_dict() for workflow in self.workflows]}


def fitted_scorer(db: Database, encoder: Encoder | MultilingualEncoder, library: PatternLibrary,
                  cancel: CancelToken = NEVER) -> Generator[Progress, None, Scorer | None]:
    """Embed the library's exemplars (cached) and fit the scorer (kept per library hash and model);
    returns the scorer (None if cancelled). The multilingual model's scorer is fitted on the library
    with its translated exemplars (app.core.audit.translations), its vectors centred."""
    cache_key = (library.content_hash, encoder.name)
    if cache_key in _SCORERS:
        return _SCORERS[cache_key]
    centre = bool(getattr(encoder, "centre_vectors", False))
    if centre:
        library = multilingual_view(library)
    texts = sorted({t for p in library.patterns.values() for t in (*p.exemplars, *p.benign_exemplars)})
    yield from embedding_stage("exemplars", embed_missing(db, encoder, texts, cancel))
    if cancel.cancelled:
        return None
    keys = [text_key(t) for t in texts]
    vectors = dict(zip(texts, load_vectors(db, keys, encoder.name)))
    scorer = Scorer.fit(library, vectors, centre=centre)
    _SCORERS[cache_key] = scorer
    return scorer


def embedding_stage(stage: str, embedding: Iterator[Progress]) -> Iterator[Progress]:
    """embed_missing's progress as `stage` of an audit job."""
    return (Progress(stage, item.done, item.total) for item in embedding)


def ledger_mark(db: Database) -> int:
    """The highest generation id in the ledger now (0 when empty)."""
    return int(db.execute("SELECT coalesce(max(id), 0) FROM generations").fetchone()[0])


def unscored_rows(db: Database, key: str, workflows: Sequence[str] | None = None,
                  after: int | None = None) -> list[dict[str, Any]]:
    """The generations (of `workflows`, else all; with an id above `after`, else any) that have no
    scores under `key`, in id order. With `after`, only that id range is read."""
    where, params = "", [key]
    if after is not None:
        where += " AND g.id > ?"
        params.append(after)
    if workflows:
        where += f" AND coalesce(g.workflow, ?) IN ({','.join('?' for _ in workflows)})"
        params.extend([NO_WORKFLOW, *workflows])
    columns = ["id", "workflow", "started_at", "prompt", "system_prompt", "messages", "params", "meta",
               "logprobs_requested", "response"]
    rows = db.execute(
        f"SELECT {', '.join('g.' + c for c in columns)} FROM generations g WHERE NOT EXISTS "
        "(SELECT 1 FROM audit_scores s WHERE s.generation_id = g.id AND s.scores_key = ?)" + where +
        " ORDER BY g.id", params).fetchall()
    return [decode_row(columns, values) for values in rows]


def score_rows(db: Database, encoder: Encoder, scorer: Scorer, rows: list[dict[str, Any]],
               cancel: CancelToken = NEVER,
               multilingual: MultilingualEncoder | None = None) -> Generator[Progress, None, int]:
    """Embed `rows`' prompts (cached) and store their scores, evidence, flags and signatures; returns
    how many the multilingual model scored.

    Every prompt is embedded by `encoder` (the workflow signals and the map use those vectors); the
    prompts in a language other than English (app.core.audit.routing) are also embedded by the
    multilingual model (default: the process's shared one, loaded only then) and scored by its scorer.
    """
    library = scorer.library
    texts = [audit_text(row) for row in rows]
    yield from embedding_stage("prompts", embed_missing(db, encoder, texts, cancel))
    routes = route(texts)
    other: Scorer | None = None
    if routes.multilingual:
        multilingual = multilingual or shared_multilingual_encoder()
        other = yield from fitted_scorer(db, multilingual, library, cancel)
        if other is None:
            return 0
        yield from embedding_stage("prompts in other languages", embed_missing(
            db, multilingual, [texts[i] for i in routes.multilingual], cancel))
    for start in range(0, len(rows), SCORE_BATCH):
        if cancel.cancelled:
            return len(routes.multilingual)
        batch, batch_texts = rows[start:start + SCORE_BATCH], texts[start:start + SCORE_BATCH]
        keys = [text_key(t) for t in batch_texts]
        params = [request_params(row) for row in batch]
        scores, evidence = scorer.score(load_vectors(db, keys, encoder.name), batch_texts, params)
        moved = [i - start for i in routes.multilingual if start <= i < start + len(batch)]
        if moved and other is not None and multilingual is not None:
            other_scores, other_evidence = other.score(
                load_vectors(db, [keys[i] for i in moved], multilingual.name), [batch_texts[i] for i in moved],
                [params[i] for i in moved])
            for row_index, i in enumerate(moved):
                scores[i] = other_scores[row_index]
                language = routes.languages[start + i]
                evidence[i] = {pid: {**found, "language": language, "embedding_model": multilingual.name}
                               for pid, found in other_evidence[row_index].items()}
        records = []
        for row, text, key, param, row_scores, row_evidence in zip(batch, batch_texts, keys, params, scores,
                                                                   evidence):
            skeleton, prefix, suffix = template_signatures(row.get("prompt") or text)
            records.append((row["id"], scores_key(library), row.get("workflow") or NO_WORKFLOW, row["started_at"],
                            key, json.dumps([round(float(s), 5) for s in row_scores]), json.dumps(row_evidence),
                            generation_flags(library, row, text, param), skeleton, prefix, suffix))
        with translate_errors("audit_scores"), db.conn:
            db.conn.executemany("INSERT OR REPLACE INTO audit_scores (generation_id, scores_key, workflow, "
                                "started_at, text_key, scores, evidence, flags, skeleton, prefix_sig, suffix_sig) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", records)
        yield Progress("scoring", min(len(rows), start + SCORE_BATCH), len(rows))
    return len(routes.multilingual)


def aggregate(db: Database, scorer: Scorer, encoder_name: str, workflows: Sequence[str] | None = None,
              cancel: CancelToken = NEVER) -> Iterator[Progress | WorkflowAudit]:
    """Build each workflow's audit from stored per-generation results: a stream of Progress and
    one WorkflowAudit per workflow, as each is judged."""
    library = scorer.library
    if workflows:  # one indexed probe per named workflow, not a scan of every score
        names = [name for name in sorted(set(workflows)) if db.execute(
            "SELECT 1 FROM audit_scores WHERE scores_key = ? AND workflow = ? LIMIT 1",
            [scores_key(library), name]).fetchone()]
    else:
        names = [row[0] for row in db.execute(
            "SELECT DISTINCT workflow FROM audit_scores WHERE scores_key = ? ORDER BY workflow",
            [scores_key(library)]).fetchall()]
    for done, name in enumerate(names):
        if cancel.cancelled:
            return
        rows = db.execute("SELECT generation_id, started_at, text_key, scores, flags, skeleton, prefix_sig, "
                          "suffix_sig FROM audit_scores WHERE scores_key = ? AND workflow = ? ORDER BY generation_id",
                          [scores_key(library), name]).fetchall()
        ids = [r[0] for r in rows]
        matrix = np.array([json.loads(r[3]) for r in rows], dtype=np.float64).reshape(len(rows), -1)
        positions = list(range(len(rows)))
        if len(positions) > 1000:
            positions = sorted(int(i) for i in np.random.default_rng(0).choice(len(rows), 1000, replace=False))
        vectors = load_vectors(db, [rows[i][2] for i in positions], encoder_name)
        step = max(1, len(ids) // GRID_SAMPLE)
        grid = induce_grid(_prompts(db, ids[::step]))
        times, flags = [r[1] for r in rows], [r[4] for r in rows]
        signatures = [[r[5] for r in rows], [r[6] for r in rows], [r[7] for r in rows]]
        signals = workflow_signals(times, flags, *signatures, vectors, grid)
        key = scores_key(library)
        verdicts = []
        for column, pid in enumerate(scorer.pattern_ids):
            column_scores = matrix[:, column]
            top = [ids[i] for i in np.argsort(-column_scores)[:3]]
            evidence = _evidence(db, key, top)
            verdicts.append(judge(library.patterns[pid], column_scores, ids, signals,
                                  {gid: ev.get(pid, {}) for gid, ev in evidence.items()}))
        groups = judge_substreams(WorkflowRows(name, ids, times, flags, signatures, matrix, vectors, positions),
                                  library, {v.id: v.level for v in verdicts}, lambda some: _prompts(db, some),
                                  lambda some: _evidence(db, key, some))
        _raise_to_groups(library, verdicts, groups)
        yield Progress("workflows", done + 1, len(names))
        yield WorkflowAudit(name, len(rows), signals, verdicts, models=workflow_models(db, key, name),
                            substreams=groups)


def workflow_models(db: Database, key: str, workflow: str) -> list[dict[str, Any]]:
    """The models of a workflow's scored generations and how each was identified: `gguf-sha256`
    for the app's own generations (and proxied ones whose file was hashed), an engine's digest, key
    or reported name for proxied ones (meta.proxy.identity), `unknown` where nothing says."""
    found = db.execute(
        "SELECT coalesce(json_extract(g.meta, '$.proxy.identity.method'), "
        "CASE WHEN g.model_sha256 IS NOT NULL THEN 'gguf-sha256' ELSE 'unknown' END), "
        "coalesce(g.model_name, g.model_sha256, ''), coalesce(g.model_sha256, json_extract(g.meta, "
        "'$.proxy.identity.value')), count(*) FROM generations AS g JOIN audit_scores AS a ON a.generation_id = g.id "
        "WHERE a.scores_key = ? AND a.workflow = ? GROUP BY 1, 2, 3 ORDER BY 4 DESC, 2",
        [key, workflow]).fetchall()
    return [{"name": name, "identified_by": how, "identity": value, "verified": how == "gguf-sha256",
             "generations": count} for how, name, value, count in found]


def _raise_to_groups(library: PatternLibrary, verdicts: list[PatternVerdict], groups: list[SubStreamVerdict]) -> None:
    """A pattern that a sub-stream resembles more than the whole workflow takes the group's level,
    with the group's summary first among its reasons and the group's rows as its examples."""
    by_id = {verdict.id: verdict for verdict in verdicts}
    for group in groups:
        verdict = by_id[group.pattern]
        verdict.level = group.level
        verdict.reasons = [f"{group.sentence}.", *(f"In that group: {r[0].lower()}{r[1:]}" for r in group.reasons)]
        verdict.examples = group.examples
        verdict.lookalikes = verdict.lookalikes or lookalike_dicts(library.patterns[group.pattern])
        verdict.score = max(verdict.score, group.hits / group.of if group.of else 0.0)


def _prompts(db: Database, ids: Sequence[int]) -> list[str]:
    """The prompts (system prompt first, as audited) of generation ids, in id order."""
    if not ids:
        return []
    found: dict[int, str] = {}
    for start in range(0, len(ids), 900):
        part = list(ids[start:start + 900])
        marks = ",".join("?" for _ in part)
        for gid, prompt, system in db.execute(
                f"SELECT id, prompt, system_prompt FROM generations WHERE id IN ({marks})", part).fetchall():
            found[gid] = audit_text({"prompt": prompt, "system_prompt": system})
    return [found[i] for i in ids if i in found]


def _evidence(db: Database, key: str, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    marks = ",".join("?" for _ in ids)
    rows = db.execute(f"SELECT generation_id, evidence FROM audit_scores WHERE scores_key = ? "
                      f"AND generation_id IN ({marks})", [key, *ids]).fetchall()
    return {gid: json.loads(text) for gid, text in rows}


def run_audit(db: Database, encoder: Encoder, library: PatternLibrary, workflows: Sequence[str] | None = None,
              cancel: CancelToken = NEVER,
              multilingual: MultilingualEncoder | None = None) -> Generator[Progress, None, AuditResult | None]:
    """Audit the ledger (or the named workflows) incrementally; yields Progress, returns the
    AuditResult (None if cancelled).

    Runs on the caller's thread (a CLI or an audit worker) and writes embeddings and scores through
    `db`. On cancel it stops between batches; what it stored is reused by the next run.
    """
    scorer = yield from fitted_scorer(db, encoder, library, cancel)
    if scorer is None:
        return None
    mark = None if workflows else ledger_mark(db)
    rows = unscored_rows(db, scores_key(library), workflows)
    routed = 0
    if rows:
        routed = yield from score_rows(db, encoder, scorer, rows, cancel, multilingual)
    backend = encoder.loaded()
    result = AuditResult(library.version, library.content_hash, encoder.name, newly_scored=len(rows),
                         embedding_backend=backend.name if backend else None,
                         embedding_file_sha256=backend.file_sha256 if backend else None, scored_through=mark,
                         multilingual_model=(multilingual or shared_multilingual_encoder()).name if routed else None,
                         multilingual_scored=routed)
    for item in aggregate(db, scorer, encoder.name, workflows, cancel):
        if isinstance(item, WorkflowAudit):
            result.workflows.append(item)
        else:
            yield item
    return None if cancel.cancelled else result
