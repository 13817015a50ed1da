"""Screening a dataset file, without adding it to the ledger: its prompts judged as one workflow
by the audit's scorer, signals and levels, and its responses attributed with the style model.

`screen_file` streams the file (the provenance reader) in chunks of CHUNK rows: each chunk's
prompts are embedded in memory (never cached in the ledger), scored against the pattern library,
flagged and given template signatures; its responses get style probabilities. Then the whole file
is judged as one workflow (`judge`, per pattern) and the attributions are summed up. When the
style model has a likelihood part, a seeded reservoir of at most SCREEN_ROWS responses is scored by
every family's own model after the read, and those rows decide the verdict. At most
MAX_ROWS rows are screened; a longer file is screened up to there and the report says so.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlite_utils import Database

from app.core.audit.embeddings import Encoder
from app.core.audit.levels import PatternVerdict, judge
from app.core.audit.map_data import excerpt
from app.core.audit.patterns import PatternLibrary
from app.core.audit.run import fitted_scorer
from app.core.audit.scorer import HIT_THRESHOLD
from app.core.audit.signals import WorkflowSignals, generation_flags, template_signatures, workflow_signals
from app.core.cancel import NEVER, CancelToken
from app.core.progress import Progress
from app.core.provenance.dataset import DatasetError, DatasetRow, RowProblem, RowReader, detect_shape, file_sha256
from app.core.screen.attribution import StyleModel, UNKNOWN
from app.core.screen.likelihood import SAMPLE_SEED, SCREEN_ROWS, likelihood_features
from app.core.screen.summary import AttributionSummary, no_model_summary, summarize

CHUNK = 1024
MAX_ROWS = 500_000
MAX_PROBLEMS_KEPT = 20
DIVERSITY_SAMPLE = 1000
_GENERATION_REF = re.compile(r"\(generation (\d+)\)")


@dataclass
class ScreenResult:
    """A screened file. Per row (same order): `rows` (0-based record positions), `scores` (n x
    patterns), `excerpts`, `attributions` (family or UNKNOWN) and `attribution_probs` (n x families);
    `vectors` (n x 384) stay in memory for the map and are not reported."""

    file_name: str
    sha256: str
    shape: str
    library_version: str
    library_hash: str
    embedding_model: str
    pattern_ids: list[str]
    rows: np.ndarray
    scores: np.ndarray
    excerpts: list[str]
    signals: WorkflowSignals
    verdicts: list[PatternVerdict]
    attribution: AttributionSummary
    attributions: list[str] = field(default_factory=list)
    attribution_probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    problems: int = 0
    problem_examples: list[str] = field(default_factory=list)
    truncated: bool = False
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32), repr=False)
    likelihood_positions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))  # rows the family models scored

    @property
    def screened(self) -> int:
        """Rows screened."""
        return len(self.rows)

    def as_dict(self) -> dict[str, Any]:
        """The JSON report (docs/screen.md)."""
        verdicts = []
        position = {int(row) + 1: i for i, row in enumerate(self.rows)}
        for verdict in self.verdicts:
            item = verdict.as_dict()
            item.pop("example_generation_ids", None)
            item["example_rows"] = [{"row": int(number), "prompt": self.excerpts[position[number]]}
                                    for number in verdict.examples]
            verdicts.append(item)
        return {"file": self.file_name, "sha256": self.sha256, "shape": self.shape, "rows_screened": self.screened,
                "truncated": self.truncated, "problems": self.problems, "problem_examples": self.problem_examples,
                "library_version": self.library_version, "library_hash": self.library_hash,
                "embedding_model": self.embedding_model, "signals": self.signals.as_dict(), "patterns": verdicts,
                "attribution": self.attribution.as_dict()}


@dataclass
class _Collected:
    rows: list[int] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    flags: list[int] = field(default_factory=list)
    signatures: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    probs: list[np.ndarray] = field(default_factory=list)
    sims: list[np.ndarray] = field(default_factory=list)
    has_response: list[bool] = field(default_factory=list)
    # a seeded reservoir of (position, prompt, response) for the likelihood model (see likelihood.py)
    sample: list[tuple[int, str, str]] = field(default_factory=list)
    sample_size: int = 0
    with_response: int = 0
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(SAMPLE_SEED))
    problems: int = 0
    problem_examples: list[str] = field(default_factory=list)


def _keep_sample(chunk: list[DatasetRow], prompts: list[str], into: _Collected) -> None:
    """Reservoir sampling (seeded) of the rows with a response, for the likelihood model."""
    if not into.sample_size:
        return
    base = len(into.rows)
    for offset, (row, prompt) in enumerate(zip(chunk, prompts)):
        if not (row.response and row.response.strip()):
            continue
        into.with_response += 1
        item = (base + offset, prompt, row.response)
        if len(into.sample) < into.sample_size:
            into.sample.append(item)
        else:
            slot = int(into.rng.integers(into.with_response))
            if slot < into.sample_size:
                into.sample[slot] = item


def _process(chunk: list[DatasetRow], vectors: np.ndarray, into: _Collected, scorer: Any, library: PatternLibrary,
             model: StyleModel | None) -> None:
    """Everything about a chunk but its embedding: scores, flags, signatures, style probabilities.
    Runs on the screen's helper thread while the next chunk is embedded."""
    prompts = [row.prompt or "" for row in chunk]
    scores, _ = scorer.score(vectors, prompts, [{}] * len(prompts), with_evidence=False)
    _keep_sample(chunk, prompts, into)
    into.rows.extend(row.index for row in chunk)
    into.prompts.extend(prompts)
    into.vectors.append(vectors)
    into.scores.append(scores.astype(np.float32))
    for row, prompt in zip(chunk, prompts):
        into.flags.append(generation_flags(library, {"prompt": prompt, "response": row.response}, prompt, {}))
        into.signatures.append(template_signatures(prompt))
        into.has_response.append(bool(row.response and row.response.strip()))
    if model is not None:
        features = model.featurizer.transform([row.response or "" for row in chunk])
        into.probs.append(model.probabilities(features))
        into.sims.append(model.centroid_similarity(features))


def _judge_all(scorer: Any, library: PatternLibrary, collected: _Collected, vectors: np.ndarray,
               scores: np.ndarray, signals: WorkflowSignals) -> list[PatternVerdict]:
    numbers = [row + 1 for row in collected.rows]  # 1-based record numbers in the file stand for generation ids
    verdicts = []
    for column, pid in enumerate(scorer.pattern_ids):
        top = [int(i) for i in np.argsort(-scores[:, column])[:3] if scores[i, column] >= HIT_THRESHOLD / 2]
        evidence: dict[int, dict[str, Any]] = {}
        if top:
            _, found = scorer.score(vectors[top], [collected.prompts[i] for i in top], [{}] * len(top))
            evidence = {numbers[i]: item.get(pid, {}) for i, item in zip(top, found)}
        verdict = judge(library.patterns[pid], scores[:, column].astype(np.float64), numbers, signals, evidence)
        verdict.reasons = [_GENERATION_REF.sub(r"(row \1)", reason) for reason in verdict.reasons]
        verdicts.append(verdict)
    return verdicts


def screen_file(path: Path | str, db: Database, encoder: Encoder, library: PatternLibrary,
                model: StyleModel | None, fields: dict[str, str] | None = None, no_model_reason: str = "",
                cancel: CancelToken = NEVER) -> Generator[Progress, None, ScreenResult | None]:
    """Screen a dataset file; yields Progress ('reading' in the reader's units), returns the
    ScreenResult (None if cancelled). `db` only holds the cached vectors of the library's exemplars:
    nothing of the file is written to it. DatasetError when the file cannot be read or no row is."""
    path = Path(path)
    shape = detect_shape(path, fields)
    sha = file_sha256(path)
    scorer = yield from fitted_scorer(db, encoder, library, cancel)
    if scorer is None:
        return None
    reader = RowReader(path, shape)
    collected, chunk, truncated, read = _Collected(), [], False, 0
    if model is not None and model.likelihood is not None:
        collected.sample_size = SCREEN_ROWS
    # The embedding of chunk k+1 (torch, which releases the GIL) overlaps the rest of the work on
    # chunk k on one helper thread; waiting for chunk k before handing over k+1 keeps the order
    # and at most two chunks in flight.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stillroom-screen") as helper:
        pending: Future[None] | None = None

        def hand_over(rows: list[DatasetRow]) -> None:
            nonlocal pending
            vectors = encoder.encode([row.prompt or "" for row in rows])
            if pending is not None:
                pending.result()
            pending = helper.submit(_process, rows, vectors, collected, scorer, library, model)

        for item in reader:
            if cancel.cancelled:
                return None
            if isinstance(item, RowProblem):
                collected.problems += 1
                if len(collected.problem_examples) < MAX_PROBLEMS_KEPT:
                    collected.problem_examples.append(item.reason)
                continue
            if read >= MAX_ROWS:
                truncated = True
                break
            chunk.append(item)
            read += 1
            if len(chunk) >= CHUNK:
                hand_over(chunk)
                chunk = []
                yield Progress("reading", reader.done, reader.total, f"{read:,} rows screened")
        if chunk:
            hand_over(chunk)
        if pending is not None:
            pending.result()
    if not collected.rows:
        raise DatasetError(f"{path}: none of its {collected.problems} rows could be read"
                           + (f" (first: {collected.problem_examples[0]})" if collected.problem_examples else ""))
    yield Progress("judging", 0, len(scorer.pattern_ids))
    vectors = np.vstack(collected.vectors)
    scores = np.vstack(collected.scores)
    sample = vectors
    if len(vectors) > DIVERSITY_SAMPLE:
        sample = vectors[np.random.default_rng(0).choice(len(vectors), DIVERSITY_SAMPLE, replace=False)]
    skeletons, prefixes, suffixes = (list(part) for part in zip(*collected.signatures))
    signals = workflow_signals([], collected.flags, skeletons, prefixes, suffixes, sample)
    verdicts = _judge_all(scorer, library, collected, vectors, scores, signals)
    labels: list[str] = [UNKNOWN] * len(collected.rows)
    probs = np.zeros((len(collected.rows), 0))
    scored = np.zeros(0, dtype=int)
    if model is not None:
        probs = np.vstack(collected.probs)
        rows = model.attribute(probs, np.vstack(collected.sims))
        has_response = np.array(collected.has_response)
        labels = [label if ok else UNKNOWN for label, ok in zip(rows.labels(), has_response)]
        by_likelihood = None
        if model.likelihood is not None and collected.sample:
            sample = sorted(collected.sample)
            features = yield from likelihood_features(db, model.likelihood.models, [(p, r) for _, p, r in sample],
                                                      cancel)
            if features is None:
                return None
            by_likelihood = model.likelihood.attribute(features)
            scored = np.array([position for position, _, _ in sample], dtype=int)
            for position, label in zip(scored, by_likelihood.labels()):
                labels[position] = label
        summary = summarize(model, rows, has_response, by_likelihood)
    else:
        summary = no_model_summary(no_model_reason or "no style model: responses were not attributed")
    return ScreenResult(path.name, sha, shape.describe(), library.version, library.content_hash, encoder.name,
                        list(scorer.pattern_ids), np.array(collected.rows), scores,
                        [excerpt(p) for p in collected.prompts], signals, verdicts, summary, labels, probs,
                        collected.problems, collected.problem_examples, truncated, vectors, scored)
