"""Style attribution on the two bundled models, for real: Gemma 3 270M (base, completion) and
SmolLM2-135M-Instruct (chat template) answer the same public prompts (style_corpus.py: 200 each,
fixed seeds, short answers, logged to a ledger once per session). The style model is trained on
half of each model's answers through `stillroom screen train FILE --label-field model`; the other
half must be attributed with at least 90% accuracy, a file written by one model must be
attributed to it, and human-written public prompts used as responses must come out "unknown".
Both bundled models are registered in the data folder, so the style model has its likelihood part
(app.core.screen.likelihood): each family's own model scores the responses, and that decides.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli.main import cli
from app.core.lab.who_wrote import who_wrote
from app.core.progress import drive
from app.core.screen.model_file import load_model
from app.core.screen.training import family_name
from app.core.store import Ledger
from tests.conftest import make_home
from tests.core.style_corpus import EVAL_DIR, PER_MODEL, WORKFLOWS, generate_corpus, human_texts, public_prompts

pytestmark = pytest.mark.skipif(not EVAL_DIR.is_dir(), reason=f"public evaluation sets not found at {EVAL_DIR}")
MIN_ACCURACY = 0.9
LAB_MIN_ACCURACY = 0.7  # two teachers: chance is 0.5
# A folder to keep the generated corpus in between runs (a data folder with the models; the
# generation resumes where it stopped). Without it the corpus lives in the session's tmp dir.
CORPUS_ENV = "STILLROOM_TEST_STYLE_CORPUS"
# Answers per model (the issue asks for at least 200); a smaller number only for a quick local look.
COUNT = int(os.environ.get("STILLROOM_TEST_STYLE_PER_MODEL", PER_MODEL))


@pytest.fixture(scope="module")
def corpus_home(tmp_path_factory: pytest.TempPathFactory, model_store: Path) -> Iterator[Path]:
    """A data folder whose ledger holds both bundled models' answers (generated once per session)."""
    kept = os.environ.get(CORPUS_ENV)
    home = Path(kept) if kept and (Path(kept) / "models").is_dir() else make_home(tmp_path_factory.mktemp("style-corpus"),
                                                                                  model_store)
    previous = os.environ.get("STILLROOM_HOME")
    os.environ["STILLROOM_HOME"] = str(home)
    try:
        ledger = Ledger.open(home / "ledger.db")
        started = time.perf_counter()
        seconds = generate_corpus(ledger, public_prompts(COUNT))
        print(f"\nstyle corpus: {2 * COUNT} generations in {time.perf_counter() - started:.0f} s {seconds}")
        ledger.close()
        yield home
    finally:
        if previous is None:
            os.environ.pop("STILLROOM_HOME", None)
        else:
            os.environ["STILLROOM_HOME"] = previous


@pytest.fixture(scope="module")
def answers(corpus_home: Path) -> dict[str, list[str]]:
    """Each model family's responses, in prompt order."""
    ledger = Ledger.open(corpus_home / "ledger.db")
    out: dict[str, list[str]] = {}
    for workflow in WORKFLOWS.values():
        rows = ledger.db.execute("SELECT model_name, response FROM generations WHERE workflow = ? AND status = 'ok' "
                                 "ORDER BY id", [workflow]).fetchall()
        assert len(rows) >= COUNT
        out[family_name(rows[0][0])] = [r[1] for r in rows[:COUNT]]
    ledger.close()
    return out


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _cli(home: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, list(args), env={"STILLROOM_HOME": str(home)}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def trained(corpus_home: Path, answers: dict[str, list[str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The style model trained on the even-numbered answers of each model, by the CLI; returns the
    folder with the held-out files."""
    folder = tmp_path_factory.mktemp("style-files")
    prompts = public_prompts(COUNT)
    train = [{"prompt": prompts[i], "response": text, "model": family}
             for family, texts in answers.items() for i, text in enumerate(texts) if i % 2 == 0]
    _write(folder / "train.jsonl", train)
    for family, texts in answers.items():
        _write(folder / f"held-{family}.jsonl", [{"prompt": prompts[i], "response": text}
                                                 for i, text in enumerate(texts) if i % 2 == 1])
    _write(folder / "human.jsonl", [{"prompt": "Write something.", "response": text} for text in human_texts()])
    meta = json.loads(_cli(corpus_home, "screen", "train", str(folder / "train.jsonl"), "--label-field", "model"))
    assert meta["training_set"]["name"] == "train.jsonl" and sorted(meta["families"]) == sorted(answers)
    return folder


@pytest.fixture(scope="module")
def held_out_screens(corpus_home: Path, answers: dict[str, list[str]], trained: Path) -> dict[str, tuple[dict, list]]:
    """`stillroom screen` of each model's held-out answers: the JSON report and the per-row records."""
    out = {}
    for family in answers:
        rows_path = trained / f"held-{family}-rows.jsonl"
        report = json.loads(_cli(corpus_home, "screen", str(trained / f"held-{family}.jsonl"), "--json",
                                 "--rows", str(rows_path)))
        out[family] = (report, [json.loads(line) for line in rows_path.read_text(encoding="utf-8").splitlines()])
    return out


def test_held_out_answers_are_attributed_to_their_model(corpus_home: Path, answers: dict[str, list[str]],
                                                       held_out_screens: dict[str, tuple[dict, list]]) -> None:
    model = load_model(corpus_home / "screen" / "style-model.npz")
    assert model.method == "likelihood" and model.likelihood is not None
    rows = [(family, record) for family, (_, records) in held_out_screens.items() for record in records]
    accuracy = sum(record["attribution"] == family for family, record in rows) / len(rows)
    by_likelihood = sum(record["attributed_by"] == "likelihood" for _, record in rows)
    print(f"\nheld-out attribution accuracy {accuracy:.3f} on {len(rows)} answers ({by_likelihood} scored by the "
          f"family models); the model's own held-out accuracy {model.heldout_accuracy:.3f} (style alone "
          f"{model.accuracy:.3f}), AUC {[round(m.auc, 3) for m in model.likelihood.metrics]}")
    assert len(rows) == sum(len(texts) // 2 for texts in answers.values())
    assert accuracy >= MIN_ACCURACY and by_likelihood >= 0.9 * len(rows)
    assert model.heldout_accuracy >= MIN_ACCURACY and all(m.auc > 0.9 for m in model.likelihood.metrics)


def test_a_file_written_by_one_model_is_attributed_to_it(answers: dict[str, list[str]],
                                                        held_out_screens: dict[str, tuple[dict, list]]) -> None:
    for family, (report, _) in held_out_screens.items():
        attribution = report["attribution"]
        assert attribution["verdict"] == family, attribution["reason"]
        assert attribution["method"] == "likelihood" and attribution["likelihood_rows"] >= 20
        assert attribution["style_model"]["heldout_accuracy"] >= MIN_ACCURACY
        assert "held-out accuracy" in attribution["reason"]
        assert report["rows_screened"] == len(answers[family]) // 2
        assert all("path" not in model for model in attribution["style_model"]["likelihood"]["models"])


def test_human_written_text_comes_out_unknown(corpus_home: Path, trained: Path) -> None:
    report = json.loads(_cli(corpus_home, "screen", str(trained / "human.jsonl"), "--json"))
    attribution = report["attribution"]
    print(f"\nhuman text: unknown share {attribution['unknown_share']} of {attribution['likelihood_rows']} scored, "
          f"{[(f['family'], f['share']) for f in attribution['families']]}")
    assert attribution["verdict"] == "unknown" and attribution["method"] == "likelihood"
    assert attribution["unknown_share"] >= 0.8


def test_the_ledger_trains_the_same_families(corpus_home: Path, answers: dict[str, list[str]]) -> None:
    meta = json.loads(_cli(corpus_home, "screen", "train", "--ledger"))
    assert sorted(meta["families"]) == sorted(answers)
    assert meta["training_set"]["name"].startswith("ledger: ") and meta["method"] == "likelihood"
    assert meta["heldout_accuracy"] >= MIN_ACCURACY


def test_who_wrote_this_learns_two_teachers(answers: dict[str, list[str]]) -> None:
    result = drive(who_wrote(answers, seed=7))
    assert result is not None and result.teachers == sorted(answers)
    curve = [p.accuracy for p in result.curve]
    print(f"\nwho wrote this: {[(p.per_teacher, round(p.accuracy, 3)) for p in result.curve]}")
    # The lab's step learns style only (its teachers may be people, with no model to score by); on
    # 24-token answers of the two bundled models style reached 0.77 at 140 answers per teacher.
    # What the step must show: a curve that ends well above chance and above where it started.
    assert result.curve[-1].per_teacher >= 100 and curve[-1] >= LAB_MIN_ACCURACY and curve[-1] > curve[0]
