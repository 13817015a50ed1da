"""Screening a dataset file without adding it to the ledger: the audit's judgement of its prompts
(real embeddings, the real pattern library), every reader format, per-row exports, and the style
model's file and its refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from app.core.audit.embeddings import Encoder
from app.core.audit.patterns import load_library
from app.core.progress import drive
from app.core.provenance.dataset import DatasetError
from app.core.screen.attribution import AttributionError, TrainingSet, train_style_model
from app.core.models.registry import register_model
from app.core.screen.likelihood import FamilyModel, family_models, train_likelihood
from app.core.screen.model_file import load_model, save_model
from app.core.screen.report import rows_text, to_html, to_markdown
from app.core.screen.run import screen_file
from app.core.screen.train_job import train_job
from app.core.screen.training import LabelledTexts, family_name, labelled_file
from tests.conftest import make_home
from app.core.store import Ledger
from tests.core.test_audit import JUDGE, ORDINARY


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder()


@pytest.fixture(scope="module")
def library():  # noqa: ANN201
    return load_library()


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _judge_rows() -> list[dict]:
    answers = ["It depends.", "Use a hammer.", "Yes, definitely.", "Boil it for six minutes."]
    return [{"prompt": JUDGE.format(q=q, a=answers[i % 4]), "response": f"Score: {i % 10 + 1}. Fine."}
            for i, q in enumerate(ORDINARY + ORDINARY[:6])]


def test_a_harvest_shaped_file_raises_its_pattern_and_nothing_reaches_the_ledger(
        tmp_path: Path, encoder: Encoder, library) -> None:  # noqa: ANN001
    ledger = Ledger.open(tmp_path / "ledger.db")
    path = _write_jsonl(tmp_path / "judge.jsonl", _judge_rows())
    result = drive(screen_file(path, ledger.db, encoder, library, None))
    levels = {v.id: v.level for v in result.verdicts}
    assert levels["autograding"] in ("medium", "high"), levels
    grading = next(v for v in result.verdicts if v.id == "autograding")
    assert grading.hit_share > 0.5 and grading.examples and all(1 <= e <= 30 for e in grading.examples)
    assert any("(row " in r for r in grading.reasons) or grading.reasons
    report = result.as_dict()
    assert report["rows_screened"] == 30 and report["attribution"]["verdict"] == "unknown"
    assert report["patterns"][0]["example_rows"] is not None
    assert ledger.db.execute("SELECT count(*) FROM generations").fetchone()[0] == 0
    assert "Autograding" in to_markdown(result) or "autograding" in to_markdown(result).lower()
    ledger.close()


def test_ordinary_prompts_stay_quiet(tmp_path: Path, encoder: Encoder, library) -> None:  # noqa: ANN001
    ledger = Ledger.open(tmp_path / "ledger.db")
    path = _write_jsonl(tmp_path / "ordinary.jsonl", [{"instruction": q, "input": "", "output": "Sure."}
                                                      for q in ORDINARY])
    result = drive(screen_file(path, ledger.db, encoder, library, None))
    assert "Alpaca" in result.shape
    assert all(v.level in ("none", "low") for v in result.verdicts), [(v.id, v.level) for v in result.verdicts]
    ledger.close()


def test_every_reader_format_screens_and_rows_export(tmp_path: Path, encoder: Encoder, library) -> None:  # noqa: ANN001
    import pyarrow as pa
    import pyarrow.parquet as pq

    ledger = Ledger.open(tmp_path / "ledger.db")
    rows = _judge_rows()[:8]
    with (tmp_path / "pairs.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["question", "answer"])
        writer.writeheader()
        writer.writerows({"question": r["prompt"], "answer": r["response"]} for r in rows)
    pq.write_table(pa.table({"prompt": [r["prompt"] for r in rows], "response": [r["response"] for r in rows]}),
                   tmp_path / "pairs.parquet")
    _write_jsonl(tmp_path / "sharegpt.jsonl", [{"conversations": [{"from": "human", "value": r["prompt"]},
                                                                  {"from": "gpt", "value": r["response"]}]} for r in rows])
    _write_jsonl(tmp_path / "messages.jsonl", [{"messages": [{"role": "user", "content": r["prompt"]},
                                                             {"role": "assistant", "content": r["response"]}]}
                                               for r in rows])
    for name in ("pairs.csv", "pairs.parquet", "sharegpt.jsonl", "messages.jsonl"):
        result = drive(screen_file(tmp_path / name, ledger.db, encoder, library, None))
        assert result.screened == 8, name
        assert result.excerpts[0].startswith("You are a strict grader"), name
    lines = rows_text(result, "jsonl").splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 8 and first["row"] == 1 and set(library.pattern_ids) <= set(first)
    table = list(csv.DictReader(rows_text(result, "csv").splitlines()))
    assert len(table) == 8 and table[0]["top_pattern"] in library.pattern_ids
    ledger.close()


def test_hostile_text_is_escaped_and_unreadable_files_are_errors(tmp_path: Path, encoder: Encoder,
                                                                library) -> None:  # noqa: ANN001
    ledger = Ledger.open(tmp_path / "ledger.db")
    path = _write_jsonl(tmp_path / "x.jsonl", [{"prompt": "<script>alert(1)</script> | \x1b[31m", "response": "ok"}] * 3)
    result = drive(screen_file(path, ledger.db, encoder, library, None))
    assert "<script>" not in to_html(result)
    assert "\x1b" not in to_markdown(result)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\nstill not\n", encoding="utf-8")
    with pytest.raises(DatasetError):
        drive(screen_file(bad, ledger.db, encoder, library, None))
    ledger.close()


def test_family_names_drop_size_and_suffixes() -> None:
    assert family_name("SmolLM2 135M Instruct") == "smollm2"
    assert family_name("Gemma 3 270m") == "gemma-3"
    assert family_name("Llama-3.1-8B-Instruct") == "llama-3.1"
    assert family_name("gpt-4o-mini") == "gpt-4o-mini"
    assert family_name(None) == ""


def _styled(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    topics = ["rain", "bread", "trains", "cats", "maths", "rivers", "stars", "gardens"]
    texts, labels = [], []
    for i in range(n):
        topic = topics[rng.integers(len(topics))]
        texts.append(f"## Overview\n\n- **{topic.title()}** are interesting.\n- Here is a fact about {topic} #{i}.")
        labels.append("markdowny")
        texts.append(f"well, {topic} is something i like, honestly. it's nice, number {i}, you know")
        labels.append("plain")
    return texts, labels


def test_style_model_file_round_trips_and_damage_is_refused(tmp_path: Path) -> None:
    texts, labels = _styled(60, 0)
    model = train_style_model(texts, labels, TrainingSet("styled", "0" * 64, len(texts)))
    assert model.accuracy >= 0.95 and all(m.auc > 0.9 for m in model.metrics)
    path = save_model(model, tmp_path / "style-model.npz")
    again = load_model(path)
    assert again.families == ["markdowny", "plain"] and again.training_set.name == "styled"
    probe = ["## Overview\n\n- **Owls** are interesting.\n- Here is a fact about owls #7.",
             "well, owls is something i like, honestly. it's nice, number 7, you know"]
    assert again.predict(probe).labels() == model.predict(probe).labels() == ["markdowny", "plain"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(AttributionError):
        load_model(path)
    with pytest.raises(AttributionError, match="no style model"):
        load_model(tmp_path / "missing.npz")


def test_the_likelihood_part_round_trips_and_an_earlier_file_is_named(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    # two families' answers scored by both models: each family's own model finds its answers likelier
    own, other = rng.normal(-1.5, 0.3, (80, 1)), rng.normal(-3.0, 0.4, (80, 1))
    entropy = rng.normal(2.0, 0.2, (160, 2))
    features = np.hstack([np.vstack([own, other]), entropy[:, :1], np.vstack([other, own]), entropy[:, 1:]])
    y = np.array([0] * 80 + [1] * 80)
    families = ["markdowny", "plain"]
    models = [FamilyModel(f, f"{i}" * 64, f"{f} 1B", str(tmp_path / f"{f}.gguf")) for i, f in enumerate(families)]
    texts, labels = _styled(60, 0)
    model = train_style_model(texts, labels, TrainingSet("styled", "0" * 64, len(texts)))
    model.likelihood = train_likelihood(features, y, families, models, {"markdowny": 80, "plain": 80}, 0)
    assert model.method == "likelihood" and model.heldout_accuracy >= 0.95
    path = save_model(model, tmp_path / "style-model.npz")
    again = load_model(path)
    assert again.likelihood is not None and again.likelihood.models == models
    human = np.array([[-3.5, 3.1, -3.8, 3.2]])  # unlikely under both models
    assert again.likelihood.attribute(features[:1]).labels() == ["markdowny"]
    assert again.likelihood.attribute(human).labels() == ["unknown"]
    assert "path" not in json.dumps(again.public_meta()["likelihood"]["models"])
    np.savez(path, **{name: np.zeros(1) for name in ("coef", "intercept")})  # neither ours nor whole
    with pytest.raises(AttributionError, match="damaged or incomplete"):
        load_model(path)


def test_each_family_finds_its_registered_model(tmp_path: Path, default_model) -> None:  # noqa: ANN001
    ledger = Ledger.open(tmp_path / "ledger.db")
    record = register_model(ledger.db, default_model.info.path)
    found = family_models(ledger.db, ["Gemma 3 270M", "gpt-4o", "smollm2"])
    assert list(found) == ["Gemma 3 270M"] and found["Gemma 3 270M"].sha256 == record.sha256
    assert "path" not in found["Gemma 3 270M"].as_dict()
    ledger.close()


def test_training_registers_a_bundled_family_model_not_used_yet(tmp_path: Path, model_store: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A newcomer has used only the default model: training on labelled gemma-3 and smollm2 answers
    still gets its likelihood part, the chat model being registered for it."""
    home = make_home(tmp_path / "home", model_store)
    ledger = Ledger.open(home / "ledger.db")
    texts, _ = _styled(40, 5)
    labels = ["gemma-3", "smollm2"] * 40
    source = LabelledTexts(texts, labels, TrainingSet("two", "0" * 64, len(texts)), 0, ["Say something."] * len(texts))
    monkeypatch.setattr("app.core.screen.train_job.TRAIN_PER_FAMILY", 12)  # the cost, not the accuracy, is at stake
    model = drive(train_job(source, "", db=ledger.db))
    assert model is not None and model.method == "likelihood", model.likelihood_note
    assert {m.family for m in model.likelihood.models} == {"gemma-3", "smollm2"}
    ledger.close()


def test_too_few_examples_or_one_family_cannot_train() -> None:
    texts, labels = _styled(60, 1)
    with pytest.raises(AttributionError, match="two families"):
        train_style_model(texts[::2], labels[::2], TrainingSet("one", "0" * 64, 60))
    texts2 = texts + ["a rare one"] * 5
    model = train_style_model(texts2, labels + ["rare"] * 5, TrainingSet("mixed", "0" * 64, 125))
    assert model.families == ["markdowny", "plain"] and model.too_few == {"rare": 5}


def test_labelled_file_reads_the_label_field(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "labelled.jsonl",
                        [{"prompt": "q", "response": f"answer {i}", "model": "m1" if i % 2 else "m2"} for i in range(10)]
                        + [{"prompt": "q", "response": "no label"}])
    source = drive(labelled_file(path, "model"))
    assert len(source.texts) == 10 and set(source.labels) == {"m1", "m2"} and source.skipped == 1
    assert source.training_set.name == "labelled.jsonl" and len(source.training_set.sha256) == 64
    with pytest.raises(DatasetError, match="no field"):
        drive(labelled_file(path, "author"))
