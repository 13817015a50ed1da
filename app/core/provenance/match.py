"""Trace a dataset's rows to the ledger: traced-exact, traced-near (with a score) or untraced.

1. Exact: the row's response, normalized by textnorm (norm-v1: NFKC, white space folded), has the
   sha256 of a generation's `response_hash` (looked up through the ledger's index, 500 rows a
   query). Where several generations share that response, the one whose `prompt_hash` matches the
   row's prompt is taken, and one not yet claimed by another row before one that is, so duplicated
   rows trace to duplicated generations. A short response (under SHORT_CHARS characters, like
   "Yes.") identifies nothing by itself: it is exact only when the prompt matches too.
2. Near: the rows left over are compared with every generation's response for edits made after
   generation (case, punctuation, spacing, truncation, small word edits). Candidates come from
   MinHash LSH over word bigrams of case- and punctuation-folded text, plus keys of the opening
   words for truncations, filtered by the signatures' similarity estimate (minhash.py); each candidate is then scored with rapidfuzz's Indel
   similarity (the `fuzz.ratio` measure, 0..1) of the folded texts. A row is traced-near when the
   best score reaches NEAR_MIN, or when it is a truncation: at least TRUNC_MIN_SHARE of the
   generation's length whose text matches the generation's beginning (similarity >= TRUNC_PREFIX_MIN);
   a truncation's score is still the whole-text similarity (a row that keeps half scores ~0.67).
   Short responses need their prompts to be similar as well (>= PROMPT_MIN). A near score of 1.0
   means the row differs from its generation only in case, punctuation or spacing.

Why MinHash LSH + rapidfuzz, not one of them alone or embeddings (measured on a 2-core machine
with the benchmark's ~900-character responses): rapidfuzz alone compares every row with every
generation, 30 us a pair, 83 hours at 100k x 100k; embeddings cost ~5 ms a text here (DESIGN.md:
170-230 texts/s, 8 minutes per 100k) and score paraphrases as near, which is not provenance.
datasketch's MinHash + MinHashLSH with the same 64 permutations and 16 bands cost 2.3 ms and ~5 KB
a text (4 minutes and ~500 MB for a 100k ledger); the same MinHash/LSH computed with numpy for a
batch of texts at once (minhash.py) costs 35 us and 576 bytes a text. LSH finds candidates; the
edit similarity decides and gives a score people can read.

Both sides are streamed: the dataset row by row (unmatched rows are spilled to a temporary file),
the ledger in chunks of LEDGER_CHUNK rows; memory holds the index and the per-row results.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import unicodedata
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rapidfuzz.distance import Indel

from app.core.cancel import NEVER, CancelToken
from app.core.errors import LedgerError
from app.core.progress import drive
from app.core.provenance import minhash
from app.core.provenance.dataset import DatasetRow, DatasetShape, RowProblem, RowReader, detect_shape, file_sha256
from app.core.provenance.report import (
    MAX_PROBLEMS,
    NEAR_MIN,
    PROMPT_MIN,
    SHORT_CHARS,
    STATUSES,
    TRACED_EXACT,
    TRACED_NEAR,
    TRUNC_MIN_SHARE,
    TRUNC_PREFIX_MIN,
    UNTRACED,
    MatchCancelled,
    MatchProgress,
    MatchReport,
    export_untraced,
    method_description,
)
from app.core.store.db import open_db, translate_errors

CANDIDATES = 12
EXACT_BATCH = 500
SAME_RESPONSE_LIMIT = 256  # generations looked at per repeated response
NEAR_BATCH = 2000
LEDGER_CHUNK = 5000
SQL_PARAMS = 900


@dataclass
class _State:
    claimed: bytearray
    exact: list[tuple[int, int]] = field(default_factory=list)
    near: list[tuple[int, int, float]] = field(default_factory=list)
    untraced: list[int] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    rows: int = 0
    malformed: int = 0
    spilled: int = 0

    def claim(self, generation: int) -> None:
        if generation < len(self.claimed):
            self.claimed[generation] = 1

    def is_claimed(self, generation: int) -> bool:
        return generation < len(self.claimed) and bool(self.claimed[generation])


def match_dataset(dataset_path: Path | str, ledger_path: Path | str, *, shape: DatasetShape | None = None,
                  cancel: CancelToken = NEVER) -> Generator[MatchProgress, None, MatchReport]:
    """Match every row of the dataset to the ledger, yielding MatchProgress between chunks, and
    return the MatchReport. Raises DatasetError / LedgerError for files that cannot be read and
    MatchCancelled when `cancel` is set (checked between chunks)."""
    path = Path(dataset_path)
    shape = shape or detect_shape(path)
    db = _open_ledger(Path(ledger_path))
    spill = tempfile.TemporaryFile("w+", encoding="utf-8", prefix="stillroom-match-")
    try:
        size = path.stat().st_size
        yield MatchProgress("hashing", 0, size, unit="bytes")
        sha256 = file_sha256(path)
        _check(cancel)
        with translate_errors(ledger_path):
            max_id = db.execute("SELECT coalesce(max(id), 0) FROM generations").fetchone()[0]
        state = _State(bytearray(max_id + 1))
        yield from _exact_phase(path, shape, db, state, spill, cancel)
        if state.spilled:
            index = yield from _index_phase(db, ledger_path, cancel)
            yield from _near_phase(db, ledger_path, index, state, spill, cancel)
    finally:
        spill.close()
        db.close()
    state.untraced.sort()
    state.near.sort()
    traced = sorted({gid for _, gid in state.exact} | {gid for _, gid, _ in state.near})
    return MatchReport(
        dataset_path=str(path), dataset_name=path.name, dataset_sha256=sha256, dataset_size=size,
        shape=shape, rows=state.rows, malformed=state.malformed, problems=state.problems,
        counts={TRACED_EXACT: len(state.exact), TRACED_NEAR: len(state.near), UNTRACED: len(state.untraced)},
        traced_ids=traced, near=state.near, exact=state.exact, untraced=state.untraced,
        method=method_description(), ledger_path=str(ledger_path),
    )


def run_match(dataset_path: Path | str, ledger_path: Path | str, **kw: Any) -> MatchReport:
    """match_dataset driven to its end on the caller's thread; returns the report."""
    return drive(match_dataset(dataset_path, ledger_path, **kw))


# -- phases --------------------------------------------------------------------------------


def _check(cancel: CancelToken) -> None:
    if cancel.cancelled:
        raise MatchCancelled("the match was cancelled")


def _open_ledger(path: Path) -> Any:
    if not path.is_file():
        raise LedgerError(f"{path}: no ledger database here")
    db = open_db(path, readonly=True)
    try:
        with translate_errors(path):
            tables = set(db.table_names())
        if "generations" not in tables:
            raise LedgerError(f"{path}: not a Stillroom ledger (it has no generations table)")
    except BaseException:
        db.close()
        raise
    return db


def _exact_phase(path: Path, shape: DatasetShape, db: Any, state: _State, spill: TextIO,
                 cancel: CancelToken) -> Generator[MatchProgress, None, None]:
    reader = RowReader(path, shape)
    batch: list[DatasetRow] = []
    for item in reader:
        if isinstance(item, RowProblem):
            state.malformed += 1
            if len(state.problems) < MAX_PROBLEMS:
                state.problems.append(item)
            continue
        state.rows += 1
        batch.append(item)
        if len(batch) >= EXACT_BATCH:
            _exact_batch(db, batch, state, spill)
            batch = []
            _check(cancel)
            yield MatchProgress("reading", reader.done, reader.total, unit=reader.unit)
    _exact_batch(db, batch, state, spill)
    _check(cancel)
    yield MatchProgress("reading", reader.total or reader.done, reader.total, unit=reader.unit)


def _exact_batch(db: Any, batch: list[DatasetRow], state: _State, spill: TextIO) -> None:
    """Trace the rows of `batch` whose response hash is in the ledger; spill the others."""
    if not batch:
        return
    keys = []
    for row in batch:
        response = fast_normalize(row.response)
        prompt = fast_normalize(row.prompt)
        keys.append((_sha256(response) if response else None, _sha256(prompt) if prompt else None, len(response)))
    hashes = sorted({key[0] for key in keys if key[0]})
    found: dict[str, list[tuple[int, str | None]]] = {}
    if hashes:
        marks = ", ".join("?" for _ in hashes)
        cursor = db.execute(
            "SELECT response_hash, id, prompt_hash FROM (SELECT response_hash, id, prompt_hash, "
            "row_number() OVER (PARTITION BY response_hash ORDER BY id) AS n FROM generations "
            f"WHERE response_hash IN ({marks})) WHERE n <= ? ORDER BY id", [*hashes, SAME_RESPONSE_LIMIT])
        for response_hash, gid, prompt_hash in cursor:
            found.setdefault(response_hash, []).append((gid, prompt_hash))
    for row, (response_hash, prompt_hash, length) in zip(batch, keys):
        if response_hash is None:
            state.untraced.append(row.index)  # an empty response traces to nothing
            continue
        generation = _pick_exact(found.get(response_hash, ()), prompt_hash, length, state)
        if generation is None:
            spill.write(json.dumps([row.index, row.prompt, row.response], ensure_ascii=False) + "\n")
            state.spilled += 1
        else:
            state.exact.append((row.index, generation))
            state.claim(generation)


def fast_normalize(text: str) -> str:
    """textnorm.normalize, faster: str.split() folds the same white space as its regex (tested)."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _sha256(normalized: str) -> str:
    """textnorm.content_hash of text already normalized."""
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def _pick_exact(candidates: Any, prompt_hash: str | None, length: int, state: _State) -> int | None:
    """The generation a row with this response traces to: same prompt first, unclaimed first."""
    same_prompt = [gid for gid, p in candidates if prompt_hash is not None and p == prompt_hash]
    pool = same_prompt or ([gid for gid, _ in candidates] if length >= SHORT_CHARS else [])
    for gid in pool:
        if not state.is_claimed(gid):
            return gid
    return pool[0] if pool else None


def _index_phase(db: Any, ledger_path: Path | str,
                 cancel: CancelToken) -> Generator[MatchProgress, None, minhash.LedgerIndex]:
    """Stream the ledger's responses into a near-duplicate index."""
    with translate_errors(ledger_path):
        total = db.execute("SELECT count(*) FROM generations WHERE response IS NOT NULL").fetchone()[0]
    index = minhash.LedgerIndex()
    last = 0
    while True:
        _check(cancel)
        with translate_errors(ledger_path):
            chunk = db.execute("SELECT id, response FROM generations WHERE id > ? AND response IS NOT NULL "
                               "ORDER BY id LIMIT ?", (last, LEDGER_CHUNK)).fetchall()
        if not chunk:
            break
        last = chunk[-1][0]
        index.add([gid for gid, _ in chunk], [minhash.loose(text) for _, text in chunk])
        yield MatchProgress("indexing", index.size, total)
    index.freeze()
    return index


def _near_phase(db: Any, ledger_path: Path | str, index: minhash.LedgerIndex, state: _State, spill: TextIO,
                cancel: CancelToken) -> Generator[MatchProgress, None, None]:
    """Score the spilled rows against their candidates; each becomes traced-near or untraced."""
    spill.seek(0)
    done = 0
    while True:
        _check(cancel)
        lines = [line for line in (spill.readline() for _ in range(NEAR_BATCH)) if line]
        if not lines:
            break
        rows = [json.loads(line) for line in lines]
        texts = [minhash.loose(response) for _, _, response in rows]
        candidates = index.candidates(minhash.sketch(texts), CANDIDATES)
        ledger = _fetch(db, ledger_path, sorted({gid for found in candidates for gid in found}))
        for (row_index, prompt, _), text, found in zip(rows, texts, candidates):
            best = _best(text, minhash.loose(prompt), found, ledger, state)
            if best is None:
                state.untraced.append(row_index)
            else:
                state.near.append((row_index, best[0], round(best[1], 4)))
                state.claim(best[0])
        done += len(rows)
        yield MatchProgress("near", done, state.spilled)


def _fetch(db: Any, ledger_path: Path | str, ids: list[int]) -> dict[int, tuple[str, str]]:
    """id -> (folded response, folded prompt) for the candidate generations."""
    texts: dict[int, tuple[str, str]] = {}
    for start in range(0, len(ids), SQL_PARAMS):
        part = ids[start:start + SQL_PARAMS]
        with translate_errors(ledger_path):
            cursor = db.execute(f"SELECT id, response, prompt FROM generations WHERE id IN "
                                f"({', '.join('?' for _ in part)})", part)
            for gid, response, prompt in cursor:
                texts[gid] = (minhash.loose(response or ""), minhash.loose(prompt or ""))
    return texts


def _best(text: str, prompt: str, found: list[int], ledger: dict[int, tuple[str, str]],
          state: _State) -> tuple[int, float] | None:
    """(generation, score) of the best accepted candidate, or None: the closest match (of the
    whole text, or of the generation's beginning for a truncation), then the higher score, then a
    generation no other row has claimed, then the earliest."""
    best: tuple[float, float, int, int] | None = None
    for gid in found:
        if gid not in ledger:
            continue
        response, their_prompt = ledger[gid]
        assessed = assess(text, response, prompt, their_prompt)
        if assessed is None:
            continue
        rank = (assessed[1], assessed[0], 0 if state.is_claimed(gid) else 1, -gid)
        if best is None or rank > best:
            best = rank
    return None if best is None else (-best[3], best[1])


def assess(text: str, generation: str, prompt: str = "", their_prompt: str = "") -> tuple[float, float] | None:
    """(score, closeness) of a row (folded `text`, `prompt`) as a near copy of a generation, or None
    if it is not one. The score is the whole-text similarity; closeness is the same, or for a
    truncation the similarity to the generation's beginning."""
    if not text or not generation:
        return None
    score = Indel.normalized_similarity(text, generation)
    closeness = score
    if TRUNC_MIN_SHARE * len(generation) <= len(text) < len(generation):
        closeness = max(score, Indel.normalized_similarity(text, generation[:len(text)]))
    accepted = score >= NEAR_MIN or closeness >= TRUNC_PREFIX_MIN
    if accepted and len(text) < SHORT_CHARS:
        accepted = bool(prompt and their_prompt) and Indel.normalized_similarity(prompt, their_prompt) >= PROMPT_MIN
    return (score, closeness) if accepted else None


def judge(text: str, generation: str, prompt: str = "", their_prompt: str = "") -> float | None:
    """The score of a row (folded `text`, `prompt`) as a near copy of a generation, or None if it is not one."""
    assessed = assess(text, generation, prompt, their_prompt)
    return None if assessed is None else assessed[0]


__all__ = [
    "MatchCancelled", "MatchProgress", "MatchReport", "STATUSES", "TRACED_EXACT", "TRACED_NEAR", "UNTRACED",
    "assess", "export_untraced", "judge", "match_dataset", "method_description", "run_match",
]
