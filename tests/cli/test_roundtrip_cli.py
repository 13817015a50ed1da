"""Round trips through the real commands, and commands that read something and produce nothing:
`stillroom log export` -> `stillroom import` / `stillroom provenance`, and the refusals with reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.store import Ledger
from tests.cli.test_cli import stillroom
from tests.core.records import record


def seed(ledger: Ledger) -> list[dict]:
    history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a tide."}]
    ledger.append_many([
        record(1), record(2, system_prompt="Write plainly."),
        record(3, mode="chat", messages=history, system_prompt="Be brief.", prompt="Name a tide.",
               response="Spring tide.", conversation_id="c1", source="chat"),
        record(4, mode="chat", conversation_id="c1", source="chat", prompt="Another?", system_prompt="Be brief.",
               messages=history + [{"role": "assistant", "content": "Spring tide."},
                                   {"role": "user", "content": "Another?"}], response="Neap tide."),
        record(5, model_name="Other Model", started_at="2024-02-29T23:59:59.999999+00:00"),
    ])
    return json.loads(stillroom("log", "list", "--json", "--limit", "100").stdout)[::-1]


@pytest.mark.parametrize("fmt", ["jsonl", "sharegpt", "markdown"])
def test_export_then_import_and_provenance(ledger: Ledger, home: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    rows = seed(ledger)
    out = tmp_path / {"jsonl": "export.jsonl", "sharegpt": "export.json", "markdown": "export.md"}[fmt]
    assert "wrote" in stillroom("log", "export", "--format", fmt, "--out", str(out)).stderr
    traced = stillroom("provenance", str(out), "--no-screening", "--out", str(tmp_path / "card"))
    records = 4 if fmt == "sharegpt" else 5  # ShareGPT: the two-turn chat is one conversation record
    assert f"export.{out.suffix[1:]}: {records} rows, 0 malformed" in traced.stdout
    assert f"traced-exact  {records:>8}  100.0%" in traced.stdout
    assert (tmp_path / "card" / "provenance.dsse.json").exists()
    monkeypatch.setenv("STILLROOM_HOME", str(tmp_path / "fresh-home"))
    done = stillroom("import", str(out), "--workflow", "back")
    assert "5 rows written from" in done.stdout
    back = json.loads(stillroom("log", "list", "--json", "--limit", "100").stdout)[::-1]
    assert sorted((r["prompt"], r["response"], r["model_name"], r["started_at"]) for r in back) == sorted(
        (r["prompt"], r["response"], r["model_name"], r["started_at"]) for r in rows)


def test_provenance_refuses_a_statement_that_traces_nothing(ledger: Ledger, home: Path, tmp_path: Path) -> None:
    seed(ledger)
    dataset = tmp_path / "foreign.jsonl"
    dataset.write_text(json.dumps({"prompt": "Capital of Chad?", "response": "N'Djamena."}) + "\n", encoding="utf-8")
    refused = stillroom("provenance", str(dataset), "--no-screening", "--out", str(tmp_path / "out"), check=False)
    assert refused.returncode == 1
    assert "none of its 1 rows is in the ledger" in refused.stderr and "Not signed" in refused.stderr
    assert not (tmp_path / "out" / "provenance.dsse.json").exists()
    signed = stillroom("provenance", str(dataset), "--no-screening", "--out", str(tmp_path / "out"),
                       "--allow-untraced")
    assert "signing anyway (--allow-untraced)" in signed.stderr
    checked = stillroom("verify", str(tmp_path / "out" / "provenance.dsse.json"), str(dataset),
                        "--ledger", str(home / "ledger.db"), check=False)
    assert checked.returncode == 1
    assert "the statement traces no generation" in checked.stdout
    without_ledger = stillroom("verify", str(tmp_path / "out" / "provenance.dsse.json"), str(dataset), check=False)
    assert without_ledger.returncode == 1
    assert "traces no row of the dataset to the ledger" in without_ledger.stdout


def test_provenance_of_a_file_whose_every_row_is_malformed(ledger: Ledger, home: Path, tmp_path: Path) -> None:
    seed(ledger)
    dataset = tmp_path / "broken.jsonl"
    dataset.write_text("".join(json.dumps({"prompt": i, "response": ["not", "text"]}) + "\n" for i in range(3)),
                       encoding="utf-8")
    refused = stillroom("provenance", str(dataset), "--no-screening", "--out", str(tmp_path / "out"), check=False)
    assert refused.returncode == 1
    assert "broken.jsonl: 0 rows, 3 malformed" in refused.stdout
    assert "every one of its 3 rows is malformed" in refused.stderr
    assert not (tmp_path / "out" / "provenance.dsse.json").exists()


def test_import_of_a_file_whose_every_record_is_malformed(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "Fine", "response": "Fine"}) + "\n"
                    + "".join(json.dumps({"prompt": i, "response": "x"}) + "\n" for i in range(3)), encoding="utf-8")
    ok = stillroom("import", str(data), "--workflow", "w")
    assert "1 rows written from 4 records" in ok.stdout and "3 malformed records were not imported" in ok.stdout
    unreadable = tmp_path / "unreadable.jsonl"  # no record reads as any format: refused before reading on
    unreadable.write_text("".join(json.dumps({"prompt": ["no"], "response": "x"}) + "\n" for _ in range(2)),
                          encoding="utf-8")
    refused = stillroom("import", str(unreadable), "--workflow", "w", "--format", "pairs", check=False)
    assert refused.returncode == 1 and "none of its first 2 records reads as prompt/response pairs" in refused.stderr
    bad = tmp_path / "bad.jsonl"  # records that read, but whose text (a lone surrogate) cannot be stored
    bad.write_text("".join('{"prompt": "half \\ud800 a pair", "response": "x"}\n' for _ in range(3)), encoding="utf-8")
    done = stillroom("import", str(bad), "--workflow", "w", check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "3 malformed records were not imported" in done.stdout
    assert "Nothing imported: bad.jsonl: every one of its 3 records is malformed (first: line 1:" in done.stderr


def test_an_export_that_would_hold_nothing_says_why(ledger: Ledger, home: Path, tmp_path: Path) -> None:
    empty = stillroom("log", "export", "--out", str(tmp_path / "a.jsonl"), check=False)
    assert empty.returncode == 1 and "no generations match: the ledger is empty" in empty.stderr
    assert not (tmp_path / "a.jsonl").exists()
    ledger.append(record(1, status="cancelled", response="half"))
    nomatch = stillroom("log", "export", "--workflow", "nope", "--out", str(tmp_path / "a.jsonl"), check=False)
    assert nomatch.returncode == 1 and "no generations match these filters" in nomatch.stderr
    sharegpt = stillroom("log", "export", "--format", "sharegpt", "--out", str(tmp_path / "a.json"), check=False)
    assert sharegpt.returncode == 1 and "none of the matching generations finished successfully" in sharegpt.stderr
