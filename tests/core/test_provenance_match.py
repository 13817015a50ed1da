"""Matching dataset rows to the ledger: exact copies, each kind of edit made after generation,
foreign rows, repeated responses, short responses, cancel, export of the untraced rows.
Real SQLite ledgers written with Ledger, no model."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.cancel import CancelToken
from app.core.errors import LedgerError
from app.core.ingest import run_import
from app.core.provenance import (
    DatasetError,
    TRACED_EXACT,
    TRACED_NEAR,
    UNTRACED,
    MatchCancelled,
    MatchProgress,
    MatchReport,
    detect_shape,
    export_untraced,
    file_sha256,
    match_dataset,
    run_match,
)
from app.core.provenance.match import fast_normalize, judge
from app.core.provenance.minhash import loose
from app.core.store import Ledger
from app.core.textnorm import normalize
from tests.core.records import record

SENTENCES = [
    "Tides are caused mainly by the gravitational pull of the Moon on the oceans.",
    "The Sun also contributes, so spring tides happen when both line up.",
    "Sourdough bread rises because wild yeast and lactic acid bacteria ferment the dough.",
    "A longer cold proof gives the crumb a more sour and complex flavour.",
    "Binary search halves the search interval at every step until the target is found.",
    "It needs the input to be sorted, and runs in logarithmic time.",
    "The Hanseatic League was a network of merchant guilds and market towns in northern Europe.",
    "Lübeck was its most important city for much of the late Middle Ages.",
    "Lichens are partnerships between a fungus and an alga or a cyanobacterium.",
    "They grow slowly and can live on bare rock for centuries.",
    "Jazz grew out of blues and ragtime in New Orleans at the start of the twentieth century.",
    "Improvisation over a chord progression is one of its defining features.",
    "In tennis, a tie-break decides a set that reaches six games all.",
    "The first player to seven points with a two-point lead wins it.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "Chlorophyll absorbs mostly red and blue light and reflects green.",
    "A haiku has three lines of five, seven and five syllables.",
    "Traditional haiku often include a seasonal reference called a kigo.",
    "Compound interest means interest is earned on previously earned interest.",
    "Over long periods, even small rates grow savings considerably.",
]


def make_texts(count: int, seed: int = 1) -> list[tuple[str, str]]:
    """`count` distinct (prompt, response) pairs, responses of four to seven sentences."""
    rng = random.Random(seed)
    pairs = []
    for i in range(count):
        picked = rng.sample(SENTENCES, rng.randint(4, 7))
        pairs.append((f"Question {i}: tell me something about {picked[0].split()[0].lower()} and more.",
                      f"Answer {i}. " + " ".join(picked)))
    return pairs


def make_ledger(path: Path, pairs: list[tuple[str, str]], **overrides: Any) -> Path:
    ledger = Ledger.open(path)
    ledger.append_many([record(i, prompt=p, response=r, **overrides) for i, (p, r) in enumerate(pairs)])
    ledger.close()
    return path


def write_rows(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in rows), encoding="utf-8")
    return path


@pytest.fixture
def pairs() -> list[tuple[str, str]]:
    return make_texts(60)


@pytest.fixture
def ledger_path(tmp_path: Path, pairs: list[tuple[str, str]]) -> Path:
    return make_ledger(tmp_path / "ledger.db", pairs)


def edited(response: str, kind: str) -> str:
    if kind == "case":
        return response.upper()
    if kind == "punctuation":
        return response.replace(".", "").replace(",", "") + "!"
    if kind == "spacing":
        return response.replace("the ", "the", 1)
    if kind == "truncation":
        return response[: len(response) // 2]
    if kind == "word":
        words = response.split(" ")
        words[len(words) // 2] = "banana"
        return " ".join(words)
    if kind == "typos":
        return response.replace("a", "e", 3)
    raise ValueError(kind)


SCORES = {"case": (1.0, 1.0), "punctuation": (1.0, 1.0), "spacing": (0.98, 1.0), "truncation": (0.55, 0.75),
          "word": (0.9, 0.999), "typos": (0.95, 0.999)}


def test_exact_copies_and_each_kind_of_edit(tmp_path: Path, pairs: list[tuple[str, str]], ledger_path: Path) -> None:
    kinds = list(SCORES)
    rows = [pairs[i] for i in range(10)]  # rows 0-9: copies of generations 1-10
    rows += [(pairs[10 + k][0], edited(pairs[10 + k][1], kind)) for k, kind in enumerate(kinds)]  # rows 10-15
    foreign = make_texts(3, seed=99)
    rows += [(p, "Something else entirely: " + r[::-1]) for p, r in foreign]  # rows 16-18
    rows += [("A prompt never seen", "Quantum chromodynamics describes the strong interaction between quarks.")]
    dataset = write_rows(tmp_path / "data.jsonl", rows)
    report = run_match(dataset, ledger_path)
    assert report.rows == len(rows) and report.malformed == 0
    assert report.exact == [(i, i + 1) for i in range(10)]
    assert [(index, gid) for index, gid, _ in report.near] == [(10 + k, 11 + k) for k in range(len(kinds))]
    for (index, _, score), kind in zip(report.near, kinds):
        low, high = SCORES[kind]
        assert low <= score <= high, (kind, score)
        assert report.status_of(index) == (TRACED_NEAR, 11 + index - 10, score)
    assert report.untraced == [16, 17, 18, 19]
    assert report.counts == {TRACED_EXACT: 10, TRACED_NEAR: len(kinds), UNTRACED: 4}
    assert report.traced_ids == list(range(1, 11 + len(kinds)))
    assert report.status_of(3) == (TRACED_EXACT, 4, None)
    assert report.status_of(17) == (UNTRACED, None, None)
    assert report.dataset_sha256 == file_sha256(dataset) and report.dataset_size == dataset.stat().st_size
    assert report.dataset_name == "data.jsonl" and report.shape == detect_shape(dataset)
    assert report.method["near"]["threshold"] == 0.8 and report.method["exact"]["normalization"] == "norm-v1"
    assert report.share(TRACED_EXACT) == pytest.approx(10 / len(rows))


def test_an_edited_row_is_never_exact_but_white_space_runs_are_normalization(
        tmp_path: Path, pairs: list[tuple[str, str]], ledger_path: Path) -> None:
    prompt, response = pairs[5]
    rows = [(prompt, response.replace(". ", ".\n\n  ")),  # norm-v1 folds runs of white space
            (prompt, response + "."), (prompt, response[:-1]), (prompt, response.replace("A", "a", 1))]
    report = run_match(write_rows(tmp_path / "d.jsonl", rows), ledger_path)
    assert report.exact == [(0, 6)]
    assert [(i, gid) for i, gid, _ in report.near] == [(1, 6), (2, 6), (3, 6)]
    assert all(score > 0.99 for _, _, score in report.near)


def test_repeated_responses_are_told_apart_by_prompt_and_by_claim(tmp_path: Path) -> None:
    shared = "The same long answer appears more than once in this ledger, word for word."
    ledger = make_ledger(tmp_path / "l.db", [("Prompt A", shared), ("Prompt B", shared), ("Prompt C", "Other.")]
                         + [("Prompt D", "A repeated answer that two seeds both produced exactly.")] * 2)
    rows = [("Prompt B", shared), ("Prompt A", shared), ("Prompt Z", shared),
            ("Prompt D", "A repeated answer that two seeds both produced exactly."),
            ("Prompt D", "A repeated answer that two seeds both produced exactly.")]
    report = run_match(write_rows(tmp_path / "d.jsonl", rows), ledger)
    assert report.exact[:2] == [(0, 2), (1, 1)]
    assert report.exact[2][0] == 2 and report.exact[2][1] in (1, 2)  # a long response traces without its prompt
    assert report.exact[3:] == [(3, 4), (4, 5)]  # two identical rows, two identical generations
    assert report.traced_ids == [1, 2, 4, 5]


def test_short_responses_need_their_prompt(tmp_path: Path) -> None:
    ledger = make_ledger(tmp_path / "l.db", [("Is water wet? Answer yes or no.", "Yes."),
                                             ("Is the sky green? Answer yes or no.", "No.")])
    rows = [("Is water wet? Answer yes or no.", "Yes."), ("Do cats bark?", "No."),
            ("Is the sky green? Answer yes or no!", "no"), ("", "Yes.")]
    report = run_match(write_rows(tmp_path / "d.jsonl", rows), ledger)
    assert report.exact == [(0, 1)]
    assert [(i, gid) for i, gid, _ in report.near] == [(2, 2)]
    assert report.untraced == [1, 3]


def test_alpaca_rows_match_the_rows_their_import_wrote(tmp_path: Path) -> None:
    pairs = make_texts(8, seed=3)
    records = [{"instruction": p, "input": "Context number %d." % i if i % 2 else "", "output": r}
               for i, (p, r) in enumerate(pairs)]
    dataset = tmp_path / "alpaca.json"
    dataset.write_text(json.dumps(records), encoding="utf-8")
    ledger = Ledger.open(tmp_path / "l.db")
    run_import(ledger, dataset, "alpaca-import")
    ledger.close()
    report = run_match(dataset, tmp_path / "l.db")
    assert report.shape.kind == "alpaca"
    assert report.exact == [(i, i + 1) for i in range(8)]


def test_malformed_rows_are_counted_and_the_progress_phases(tmp_path: Path, pairs: list[tuple[str, str]],
                                                           ledger_path: Path) -> None:
    dataset = tmp_path / "d.jsonl"
    write_rows(dataset, pairs[:3] + [(pairs[3][0], edited(pairs[3][1], "word"))])
    with dataset.open("a", encoding="utf-8") as handle:
        handle.write("{broken\n" + json.dumps({"prompt": "no response"}) + "\n")
    generator = match_dataset(dataset, ledger_path)
    progress: list[MatchProgress] = []
    while True:
        try:
            progress.append(next(generator))
        except StopIteration as stop:
            report: MatchReport = stop.value
            break
    assert [p.stage for p in progress][:2] == ["hashing", "reading"]
    assert {"indexing", "near"} <= {p.stage for p in progress}
    assert progress[-1].stage == "near" and progress[-1].done == progress[-1].total == 1
    assert (report.rows, report.malformed) == (4, 2)
    assert [(p.index, p.reason[:6]) for p in report.problems] == [(4, "line 5"), (5, "line 6")]
    with pytest.raises(ValueError, match="row 4 is not a valid row"):
        report.status_of(4)


def test_no_near_phase_when_every_row_is_exact(tmp_path: Path, pairs: list[tuple[str, str]], ledger_path: Path) -> None:
    generator = match_dataset(write_rows(tmp_path / "d.jsonl", pairs[:5]), ledger_path)
    phases = set()
    try:
        while True:
            phases.add(next(generator).stage)
    except StopIteration as stop:
        assert stop.value.counts[TRACED_EXACT] == 5
    assert phases == {"hashing", "reading"}


def test_cancel_stops_between_chunks(tmp_path: Path, ledger_path: Path) -> None:
    rows = make_texts(3000, seed=5)
    dataset = write_rows(tmp_path / "big.jsonl", rows)
    token = CancelToken()
    generator = match_dataset(dataset, ledger_path, cancel=token)
    first = next(generator)
    assert first.stage == "hashing"
    next(generator)
    token.cancel()
    with pytest.raises(MatchCancelled):
        for _ in generator:
            pass
    already = CancelToken()
    already.cancel()
    with pytest.raises(MatchCancelled):
        run_match(dataset, ledger_path, cancel=already)


def test_export_untraced(tmp_path: Path, pairs: list[tuple[str, str]], ledger_path: Path) -> None:
    foreign = [("Unknown prompt one", "An answer that Stillroom never generated, about owls and their hearing."),
               ("Unknown prompt two", "Another answer from elsewhere, about the history of the printing press.")]
    rows = [pairs[0], foreign[0], pairs[1], foreign[1]]
    report = run_match(write_rows(tmp_path / "d.jsonl", rows), ledger_path)
    assert report.untraced == [1, 3]
    out = tmp_path / "untraced.jsonl"
    assert export_untraced(report, out) == 2
    exported = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert exported == [{"row": 1, "prompt": foreign[0][0], "response": foreign[0][1]},
                        {"row": 3, "prompt": foreign[1][0], "response": foreign[1][1]}]
    with (tmp_path / "d.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"prompt": "late", "response": "A row added after the match."}) + "\n")
    with pytest.raises(DatasetError, match="changed since it was matched"):
        export_untraced(report, out)


def test_csv_and_parquet_datasets_match_too(tmp_path: Path, pairs: list[tuple[str, str]], ledger_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [{"question": p, "answer": r} for p, r in pairs[:4]]
    records[1]["answer"] = records[1]["answer"].lower()
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "d.parquet")
    report = run_match(tmp_path / "d.parquet", ledger_path)
    assert report.exact == [(0, 1), (2, 3), (3, 4)] and [n[:2] for n in report.near] == [(1, 2)]
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("question,answer\n" + "".join(f'"{p}","{r}"\n' for p, r in pairs[:2]), encoding="utf-8")
    assert run_match(csv_path, ledger_path).exact == [(0, 1), (1, 2)]


def test_ledger_problems_name_the_file(tmp_path: Path, pairs: list[tuple[str, str]]) -> None:
    dataset = write_rows(tmp_path / "d.jsonl", pairs[:1])
    with pytest.raises(LedgerError, match="no ledger database here"):
        run_match(dataset, tmp_path / "absent.db")
    import sqlite3
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(LedgerError, match="not a Stillroom ledger"):
        run_match(dataset, other)


def test_an_empty_ledger_traces_nothing(tmp_path: Path, pairs: list[tuple[str, str]]) -> None:
    Ledger.open(tmp_path / "empty.db").close()
    report = run_match(write_rows(tmp_path / "d.jsonl", pairs[:3]), tmp_path / "empty.db")
    assert report.untraced == [0, 1, 2] and report.traced_ids == []


def test_judge_scores() -> None:
    text = loose("The quick brown fox jumps over the lazy dog, twice, before breakfast.")
    assert judge(text, text) == 1.0
    assert judge(loose("The quick brown fox"), text) is None  # too little of it
    assert judge(loose("Something else entirely, about owls and their hearing."), text) is None
    assert 0.6 < judge(loose("The quick brown fox jumps over the lazy"), text) < 0.8  # type: ignore[operator]


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40))
def test_fast_normalize_is_textnorm(text: str) -> None:
    assert fast_normalize(text) == normalize(text)


def test_templated_generations_sharing_openings_and_sentences(tmp_path: Path) -> None:
    """Batch outputs look alike: each edited row still traces to its own generation, and a foreign
    row made of the same opening and sentences stays untraced."""
    opening = "Sure! Here is a short explanation written for a curious reader:"
    rng = random.Random(11)
    pairs = [(f"Explain item {i}", f"{opening} " + " ".join(rng.sample(SENTENCES, 6))) for i in range(300)]
    ledger = make_ledger(tmp_path / "l.db", pairs)
    picks = rng.sample(range(300), 40)
    kinds = ["truncation", "word", "case", "typos"]
    rows = [(pairs[i][0], edited(pairs[i][1], kinds[k % 4])) for k, i in enumerate(picks)]
    rows += [(f"Foreign {j}", f"{opening} " + " ".join(rng.sample(SENTENCES, 6))) for j in range(20)]
    report = run_match(write_rows(tmp_path / "d.jsonl", rows), ledger)
    assert [(index, gid) for index, gid, _ in report.near] == [(k, i + 1) for k, i in enumerate(picks)]
    assert report.untraced == list(range(40, 60))
