"""`stillroom screen` on the command line: a report with no style model says why it could not
attribute, per-row exports, refusals with a reason and a nonzero exit, training from imported
rows that carry model names, and `stillroom lab who-wrote --workflows`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from app.cli.main import cli
from app.core.store import Ledger
from tests.core.records import record
from tests.core.test_audit import JUDGE, ORDINARY
from tests.core.test_screen import _styled


def _run(home: Path, *args: str):  # noqa: ANN202
    return CliRunner().invoke(cli, list(args), env={"STILLROOM_HOME": str(home)})


def test_screen_without_a_style_model_reports_the_prompts_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "judge.jsonl"
    path.write_text("".join(json.dumps({"prompt": JUDGE.format(q=q, a="Yes."), "response": "Score: 7"}) + "\n"
                            for q in ORDINARY), encoding="utf-8")
    result = _run(tmp_path, "screen", str(path), "--json", "--rows", str(tmp_path / "rows.csv"), "--flagged-only")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows_screened"] == len(ORDINARY)
    assert {p["id"]: p["level"] for p in report["patterns"]}["autograding"] in ("medium", "high")
    assert report["attribution"]["verdict"] == "unknown" and "no style model" in report["attribution"]["reason"]
    rows = list(csv.DictReader((tmp_path / "rows.csv").read_text(encoding="utf-8").splitlines()))
    assert rows and all(r["top_pattern"] == "autograding" for r in rows)
    assert Ledger.open(tmp_path / "ledger.db").db.execute("SELECT count(*) FROM generations").fetchone()[0] == 0


def test_refusals_have_a_reason_and_a_nonzero_exit(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"prompt": "p", "response": "r"}) + "\n", encoding="utf-8")
    bad_rows = _run(tmp_path, "screen", str(path), "--rows", str(tmp_path / "rows.txt"))
    assert bad_rows.exit_code != 0 and ".jsonl or .csv" in bad_rows.output
    no_model = _run(tmp_path, "screen", "model")
    assert no_model.exit_code != 0 and "no style model" in no_model.output
    neither = _run(tmp_path, "screen", "train")
    assert neither.exit_code != 0 and "--ledger" in neither.output
    one_family = _run(tmp_path, "screen", "train", str(path), "--label-field", "prompt")
    assert one_family.exit_code != 0 and "two families" in one_family.output


def test_train_from_imported_rows_with_model_names_and_who_wrote(tmp_path: Path) -> None:
    texts, labels = _styled(60, 5)
    ledger = Ledger.open(tmp_path / "ledger.db")
    names = {"markdowny": "Acme-Chat-7B-Instruct", "plain": "Plainly 1.5B"}
    ledger.append_many([record(i, source="import", model_sha256=None, model_name=names[label], response=text,
                               workflow=f"imported-{label}") for i, (text, label) in enumerate(zip(texts, labels))])
    ledger.close()
    trained = _run(tmp_path, "screen", "train", "--ledger")
    assert trained.exit_code == 0, trained.output
    meta = json.loads(trained.stdout)
    assert meta["families"] == ["acme-chat", "plainly"] and meta["accuracy"] >= 0.9
    shown = _run(tmp_path, "screen", "model")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["training_set"]["name"].startswith("ledger: 120")
    who = _run(tmp_path, "lab", "who-wrote", "--workflows", "imported-markdowny", "imported-plain", "--json")
    assert who.exit_code == 0, who.output
    curve = json.loads(who.stdout)["curve"]
    assert curve[-1]["accuracy"] >= 0.9 and curve[0]["per_teacher"] == 4
