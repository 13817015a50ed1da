"""End to end with the real model: a batch run makes a dataset; a few rows are edited and a few
foreign rows added; Stillroom writes the statement (screened by the real audit), mlcroissant
validates it, verify passes, and one changed byte of the dataset, the statement or a ledger row
makes verify fail with the reason that names it."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app.core.batch.jobs import create_job
from app.core.batch.run import BatchFinished, run_batch
from app.core.progress import drive
from app.core.batch.spec import load_spec
from app.core.models.registry import ModelRecord, register_model
from app.core.models.runner import Runner
from app.core.provenance.card import split_front_matter
from app.core.provenance.match import run_match
from app.core.provenance.statement import Declared
from app.core.provenance.verify import verify_statement
from app.core.provenance.write import write_provenance
from app.core.store import Ledger

TOPICS = ["lighthouses", "beekeeping", "glaciers", "sourdough bread", "tide pools", "old maps", "violins",
          "desert plants"]
FOREIGN = [{"prompt": "Summarize the water cycle.",
            "response": "Water evaporates, condenses into clouds and falls again as rain or snow."},
           {"prompt": "Give one tip for learning chess.",
            "response": "Play through annotated master games and guess each move before you look."}]
MIN_EDIT_CHARS = 60


def batch_dataset(runner: Runner, ledger: Ledger, folder: Path) -> list[dict]:
    """Run a real batch job and return its output lines (prompt, response, ledger_id)."""
    (folder / "topics.jsonl").write_text("".join(json.dumps({"topic": t}) + "\n" for t in TOPICS))
    spec = {"name": "facts", "workflow": "facts-e2e", "template": "Write two sentences about {topic}:",
            "inputs": "topics.jsonl", "samples": 1, "output": "out/facts.jsonl",
            "params": {"temperature": 0.8, "max_tokens": 48, "seed": 11}}
    (folder / "job.yaml").write_text(yaml.safe_dump(spec))
    job = create_job(ledger.db, load_spec(folder / "job.yaml"))
    finished = drive(run_batch(ledger, runner, job.id))
    assert isinstance(finished, BatchFinished) and finished.status == "done"
    return [json.loads(line) for line in Path(job.output_path).read_text().splitlines()]


@pytest.mark.slow
def test_statement_for_an_edited_batch_dataset(runner: Runner, ledger: Ledger, default_model: ModelRecord,
                                               tmp_path: Path) -> None:
    register_model(ledger.db, default_model.info.path)
    lines = batch_dataset(runner, ledger, tmp_path)
    assert len(lines) == len(TOPICS)
    responses = [line["response"] for line in lines]
    editable = [i for i, text in enumerate(responses)
                if len(text.strip()) >= MIN_EDIT_CHARS and responses.count(text) == 1 and text.upper() != text]
    assert len(editable) >= 2, f"the model gave too few long answers to edit: {responses}"
    shouted, cut = editable[0], editable[1]
    rows = [{"prompt": line["prompt"], "response": line["response"]} for line in lines]
    rows[shouted]["response"] = rows[shouted]["response"].upper()  # a case edit
    text = rows[cut]["response"].strip()
    rows[cut]["response"] = text[: int(len(text) * 0.7)]  # truncated
    rows += FOREIGN
    release = tmp_path / "release"
    release.mkdir()
    dataset = release / "facts.jsonl"
    dataset.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")

    report = run_match(dataset, ledger.path)
    assert report.counts == {"traced-exact": len(TOPICS) - 2, "traced-near": 2, "untraced": len(FOREIGN)}
    assert {(row, gid) for row, gid, _ in report.near} == {(shouted, lines[shouted]["ledger_id"]),
                                                            (cut, lines[cut]["ledger_id"])}
    assert report.untraced == [len(TOPICS), len(TOPICS) + 1]

    paths = write_provenance(report, ledger.path, Declared(license="cc-by-4.0", description="Facts, edited."),
                             release, key_dir=tmp_path / "keys")
    statement = json.loads(base64.b64decode(json.loads(paths["dsse"].read_text())["payload"]))["predicate"]
    [model] = statement["models"]
    assert model["sha256"] == default_model.sha256 and model["architecture"] == "gemma3"
    assert model["generations"] == len(TOPICS)
    assert statement["runtime"]["llama_cpp_python_logged"][0]["generations"] == len(TOPICS)
    assert statement["workflows"] == [{"name": "facts-e2e", "generations": len(TOPICS)}]
    assert statement["sampling"]["temperature"]["values"] == [{"value": 0.8, "count": len(TOPICS)}]
    screening = statement["screening"]
    assert screening["status"] == "run" and screening["library_version"]
    [workflow] = screening["workflows"]
    assert workflow["name"] == "facts-e2e" and len(workflow["levels"]) >= 9
    assert statement["ledger"]["verified"] and statement["ledger"]["head_id"] == len(TOPICS)
    meta, body = split_front_matter(paths["card"].read_text())
    assert meta["license"] == "cc-by-4.0" and "synthetic" in meta["tags"]
    assert "traced nearly (edited after generation): 2 rows" in body and "facts-e2e" in body

    done = subprocess.run([str(Path(sys.executable).parent / "mlcroissant"), "validate", "--jsonld",
                           str(paths["croissant"])], capture_output=True, text=True, timeout=180,
                          env=os.environ | {"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0 and "Done" in done.stderr, done.stderr[-3000:]

    result = verify_statement(paths["dsse"], dataset, ledger_path=ledger.path, public_key=paths["public_key"])
    assert result.ok, result.reasons

    # one changed byte of the dataset
    changed = tmp_path / "changed.jsonl"
    data = bytearray(dataset.read_bytes())
    data[data.index(b'"response": "') + 14] ^= 0x20
    changed.write_bytes(bytes(data))
    reasons = verify_statement(paths["dsse"], changed, ledger_path=ledger.path).reasons
    assert len(reasons) == 1 and reasons[0].startswith("dataset sha256 differs from the statement's subject")

    # one changed byte of the statement (inside its signed payload)
    forged = tmp_path / "forged.dsse.json"
    envelope = json.loads(paths["dsse"].read_text())
    payload = bytearray(base64.b64decode(envelope["payload"]))
    payload[payload.index(b'"traced-exact":') + 15] ^= 0x01
    envelope["payload"] = base64.b64encode(bytes(payload)).decode()
    forged.write_text(json.dumps(envelope))
    assert verify_statement(forged, dataset, ledger_path=ledger.path).reasons == [
        "signature does not verify: the statement was modified"]

    # one changed byte of a ledger row, edited in SQLite directly
    copy = tmp_path / "ledger-copy.db"
    ledger.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(ledger.path, copy)
    target = lines[0]["ledger_id"]  # a traced row that is not the chain head
    assert target != len(TOPICS)
    conn = sqlite3.connect(copy)
    with conn:
        response = conn.execute("SELECT response FROM generations WHERE id = ?", [target]).fetchone()[0]
        conn.execute("UPDATE generations SET response = ? WHERE id = ?",
                     [chr(ord(response[0]) ^ 1) + response[1:] if response else "x", target])
    conn.close()
    reasons = verify_statement(paths["dsse"], dataset, ledger_path=copy).reasons
    assert reasons[0] == f"ledger row {target} differs from the one the statement traced"
    assert reasons[-1].startswith(f"the ledger's hash chain does not verify: row {target} was edited")
    assert verify_statement(paths["dsse"], dataset, ledger_path=ledger.path).ok  # the original is untouched
