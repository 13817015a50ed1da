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

from sqlite_utils import Database

from app.core.audit import aggregates, workflow_state
from app.core.audit.aggregates import WorkflowAudit
from app.core.audit.embeddings import Encoder, embed_missing, load_vectors, text_key
from app.core.audit.encoders import MultilingualEncoder, shared_multilingual_encoder
from app.core.audit.levels import PatternVerdict, lookalike_dicts
from app.core.audit.patterns import PatternLibrary
from app.core.audit.routing import route
from app.core.audit.scorer import Scorer, scores_key
from app.core.audit.translations import multilingual_view
from app.core.audit.substreams import SubStreamVerdict
from app.core.audit.signals import audit_text, generation_flags, request_params, template_signatures
from app.core.cancel import NEVER, CancelToken
from app.core.progress import Progress
from app.core.store.db import translate_errors
from app.core.store.queries import decode_row

SCORE_BATCH = 2000
STREAM_ROWS = 50_000  # unscored rows read at a time by a whole audit
NO_WORKFLOW = "(no workflow)"
_SCORERS: dict[tuple[str, str], Scorer] = {}


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
                  after: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The generations (of `workflows`, else all; with an id above `after`, else any) that have no
    scores under `key`, in id order, the first `limit` of them when given. With `after`, only that
    id range is read."""
    if workflows is None and after is None and _all_scored(db, key):
        return []
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
        " ORDER BY g.id" + (f" LIMIT {int(limit)}" if limit else ""), params).fetchall()
    return [decode_row(columns, values) for values in rows]


def _all_scored(db: Database, key: str) -> bool:
    """Whether every generation has scores under `key`: as many score rows as generations (each
    score row is one distinct generation of the ledger, which only grows), read from two indexes
    instead of probing every generation."""
    scored = db.execute("SELECT count(*) FROM audit_scores WHERE scores_key = ?", [key]).fetchone()[0]
    return scored > 0 and scored == db.execute("SELECT count(*) FROM generations").fetchone()[0]


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
        batch_languages = routes.languages[start:start + SCORE_BATCH]
        scores, evidence = scorer.score(load_vectors(db, keys, encoder.name), batch_texts, params,
                                        languages=batch_languages)
        moved = [i - start for i in routes.multilingual if start <= i < start + len(batch)]
        if moved and other is not None and multilingual is not None:
            other_scores, other_evidence = other.score(
                load_vectors(db, [keys[i] for i in moved], multilingual.name), [batch_texts[i] for i in moved],
                [params[i] for i in moved], languages=[batch_languages[i] for i in moved])
            for row_index, i in enumerate(moved):
                scores[i] = other_scores[row_index]
                language = batch_languages[i]
                evidence[i] = {pid: {**found, "language": language, "embedding_model": multilingual.name}
                               for pid, found in other_evidence[row_index].items()}
        records = []
        for row, text, key, param, row_scores, row_evidence, language in zip(batch, batch_texts, keys, params, scores,
                                                                             evidence, batch_languages):
            skeleton, prefix, suffix = template_signatures(row.get("prompt") or text)
            records.append((row["id"], scores_key(library), row.get("workflow") or NO_WORKFLOW, row["started_at"],
                            key, json.dumps([round(float(s), 5) for s in row_scores]), json.dumps(row_evidence),
                            generation_flags(library, row, text, param, language), skeleton, prefix, suffix))
        with translate_errors("audit_scores"), db.conn:
            db.conn.executemany("INSERT OR REPLACE INTO audit_scores (generation_id, scores_key, workflow, "
                                "started_at, text_key, scores, evidence, flags, skeleton, prefix_sig, suffix_sig) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", records)
        yield Progress("scoring", min(len(rows), start + SCORE_BATCH), len(rows))
    return len(routes.multilingual)


def aggregate(db: Database, scorer: Scorer, encoder_name: str, workflows: Sequence[str] | None = None,
              cancel: CancelToken = NEVER) -> Iterator[Progress | WorkflowAudit]:
    """Each workflow's audit: a stream of Progress and one WorkflowAudit per workflow, as each is
    judged. A workflow's stored audit (app.core.audit.aggregates) is read back while its stamp
    holds; when the workflow has rows scored since, they are folded into its stored running
    aggregates (app.core.audit.workflow_state); otherwise it is judged from all its scored rows."""
    key = scores_key(scorer.library)
    stamps = aggregates.live_stamps(db, key, sorted(set(workflows)) if workflows else None)
    names = sorted(stamps)
    stored = aggregates.load(db, key, encoder_name, names)
    for done, name in enumerate(names):
        if cancel.cancelled:
            return
        held = stored.get(name)
        if held is not None and held.stamp == stamps[name]:
            audit = aggregates.from_json(held.audit)
        else:
            audit = judge_workflow(db, scorer, encoder_name, name, held)
        yield Progress("workflows", done + 1, len(names))
        yield audit


def judge_workflow(db: Database, scorer: Scorer, encoder_name: str, name: str,
                   held: aggregates.Stored | None = None) -> WorkflowAudit:
    """Judge one workflow from its running aggregates: the stored ones (`held`) with the rows scored
    since folded in, when their stamp then matches the workflow's rows, else ones built from all its
    rows; store the audit and the aggregates."""
    library = scorer.library
    key = scores_key(library)
    patterns = len(scorer.pattern_ids)
    state = None
    if held is not None:
        live = aggregates.live_stamps(db, key, [name]).get(name)
        state = workflow_state.fold(db, key, name, json.loads(held.state), patterns)
        if (state["n"], state["last_rowid"]) != live:
            state = None
    if state is None:
        state = workflow_state.build(db, key, name, patterns)
    signals, verdicts, groups = workflow_state.finish(db, key, encoder_name, library, name, state,
                                                      lambda some: _prompts(db, some),
                                                      lambda some: _evidence(db, key, some))
    _raise_to_groups(library, verdicts, groups)
    models = [{"name": model, "identified_by": how, "identity": value, "verified": how == "gguf-sha256",
               "generations": count} for how, model, value, count in state["models"]]
    audit = WorkflowAudit(name, state["n"], signals, verdicts, models=models, substreams=groups)
    aggregates.save(db, key, encoder_name, audit, (state["n"], state["last_rowid"]), state)
    return audit


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
    scored, routed = yield from _score_unscored(db, encoder, scorer, workflows, cancel, multilingual)
    if cancel.cancelled:
        return None
    backend = encoder.loaded()
    result = AuditResult(library.version, library.content_hash, encoder.name, newly_scored=scored,
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


def _score_unscored(db: Database, encoder: Encoder, scorer: Scorer, workflows: Sequence[str] | None,
                    cancel: CancelToken, multilingual: MultilingualEncoder | None = None
                    ) -> Generator[Progress, None, tuple[int, int]]:
    """Score the unscored generations STREAM_ROWS at a time (so a first audit of a large ledger holds
    one slice of rows, not all), with progress over all of them; returns how many were scored, and
    how many of them the multilingual model scored."""
    key = scores_key(scorer.library)
    rows = unscored_rows(db, key, workflows, limit=STREAM_ROWS)
    total = len(rows)
    if len(rows) == STREAM_ROWS:  # more to come: count them once, for the progress
        total += _unscored_count(db, key, workflows, after=rows[-1]["id"])
    done = routed = 0
    while rows and not cancel.cancelled:
        scoring = score_rows(db, encoder, scorer, rows, cancel, multilingual)
        while True:
            try:
                item = next(scoring)
            except StopIteration as finished:
                routed += finished.value or 0
                break
            within = item.done * len(rows) // item.total if item.total else 0
            yield Progress(item.stage, done + within, total, item.message)
        done += len(rows)
        if len(rows) < STREAM_ROWS:
            break
        rows = unscored_rows(db, key, workflows, after=rows[-1]["id"], limit=STREAM_ROWS)
    return done, routed


def _unscored_count(db: Database, key: str, workflows: Sequence[str] | None, after: int) -> int:
    where, params = "", [key, after]
    if workflows:
        where = f" AND coalesce(g.workflow, ?) IN ({','.join('?' for _ in workflows)})"
        params.extend([NO_WORKFLOW, *workflows])
    return int(db.execute("SELECT count(*) FROM generations g WHERE NOT EXISTS (SELECT 1 FROM audit_scores s WHERE "
                          "s.generation_id = g.id AND s.scores_key = ?) AND g.id > ?" + where, params).fetchone()[0])
