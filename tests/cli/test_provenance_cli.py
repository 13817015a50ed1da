"""`stillroom provenance`, `stillroom provenance key` and `stillroom verify`, run as real processes."""

from __future__ import annotations

import json
from pathlib import Path

from app.core.store import Ledger
from tests.cli.test_cli import stillroom
from tests.core.records import record

FOREIGN = {"prompt": "What is the capital of Mongolia?", "response": "Ulaanbaatar is the capital and largest city."}


def response_of(i: int) -> str:
    return f"Lantern {i} was lit at dusk and burned a steady {['yellow', 'white', 'orange'][i % 3]} until dawn."


def seed(ledger: Ledger, folder: Path) -> Path:
    ledger.append_many([record(i, workflow="lanterns", response=response_of(i)) for i in range(6)])
    rows = [{"prompt": record(i)["prompt"], "response": response_of(i)} for i in range(5)] + [FOREIGN]
    folder.mkdir(parents=True, exist_ok=True)
    dataset = folder / "lanterns.jsonl"
    dataset.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return dataset


def test_provenance_writes_files_and_verify_checks_them(ledger: Ledger, home: Path, tmp_path: Path) -> None:
    dataset = seed(ledger, tmp_path / "release")
    done = stillroom("provenance", str(dataset), "--license", "cc-by-4.0", "--description", "Lanterns at night.",
                     "--intended-use", "Tests.", "--no-screening", "--export-untraced", str(tmp_path / "untraced.jsonl"))
    assert "lanterns.jsonl: 6 rows, 0 malformed" in done.stdout
    assert "traced-exact         5   83.3%" in done.stdout and "untraced             1   16.7%" in done.stdout
    for name in ("README.md", "croissant.json", "provenance.dsse.json", "provenance.pub.pem"):
        assert f"{dataset.parent / name}" in done.stdout and (dataset.parent / name).exists()
    assert "wrote 1 untraced row(s)" in done.stderr
    untraced = [json.loads(line) for line in (tmp_path / "untraced.jsonl").read_text().splitlines()]
    assert [(u["prompt"], u["response"]) for u in untraced] == [(FOREIGN["prompt"], FOREIGN["response"])]
    card = (dataset.parent / "README.md").read_text()
    assert "license: cc-by-4.0" in card and "Lanterns at night." in card

    key = stillroom("provenance", "key", "--export", str(tmp_path / "me.pem"))
    fingerprint = key.stdout.split("fingerprint: ")[1].split()[0]
    assert (tmp_path / "me.pem").read_text() == (dataset.parent / "provenance.pub.pem").read_text()
    assert oct((home / "keys" / "provenance-ed25519.pem").stat().st_mode & 0o777) == "0o600"

    statement = str(dataset.parent / "provenance.dsse.json")
    ok = stillroom("verify", statement, str(dataset), "--ledger", str(home / "ledger.db"), "--key",
                   str(tmp_path / "me.pem"))
    assert ok.stdout.strip().endswith("verified") and f"pinned key, fingerprint {fingerprint}" in ok.stdout
    assert "traced rows: all 5 traced generations are in the ledger, unchanged" in ok.stdout

    dataset.write_text(dataset.read_text().replace("Lantern 2", "Lantern 3"), encoding="utf-8")
    failed = stillroom("verify", statement, str(dataset), check=False)
    assert failed.returncode == 1
    assert "verification failed: dataset sha256 differs from the statement's subject" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_provenance_reports_bad_input_in_one_line(ledger: Ledger, tmp_path: Path) -> None:
    dataset = seed(ledger, tmp_path / "release")
    missing = stillroom("provenance", str(tmp_path / "nope.jsonl"), "--no-screening", check=False)
    assert missing.returncode != 0 and "nope.jsonl" in missing.stderr and "Traceback" not in missing.stderr
    bad_field = stillroom("provenance", str(dataset), "--field", "prompt", check=False)
    assert bad_field.returncode == 2 and "give ROLE=FIELD" in bad_field.stderr
    unknown_field = stillroom("provenance", str(dataset), "--field", "prompt=question", "--field",
                              "response=answer", check=False)
    assert unknown_field.returncode == 1 and 'no field "question"' in unknown_field.stderr
    (dataset.parent / "README.md").write_text("# My own card\n")
    refused = stillroom("provenance", str(dataset), "--no-screening", check=False)
    assert refused.returncode == 1 and "was not written by Stillroom" in refused.stderr
    assert (dataset.parent / "README.md").read_text() == "# My own card\n"
    not_json = tmp_path / "statement.json"
    not_json.write_text("{ nope")
    broken = stillroom("verify", str(not_json), str(dataset), check=False)
    assert broken.returncode == 1 and "no longer valid JSON" in broken.stderr
