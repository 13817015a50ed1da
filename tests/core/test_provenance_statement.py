"""Provenance statements on a real ledger and real dataset files: the statement's content, the
dataset card, Croissant (checked by the real mlcroissant), the Ed25519 key and DSSE envelope,
and verify failing with a reason that names what changed."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from app.core.models.default_model import default_model_path
from app.core.models.registry import register_model
from app.core.provenance.card import render_card, size_category, split_front_matter
from app.core.provenance.match import MatchReport, run_match
from app.core.provenance.signing import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    key_fingerprint,
    load_or_create_key,
    load_public_key,
    pae,
    public_key_pem,
)
from app.core.provenance.statement import NOT_DECLARED, Declared, build_statement
from app.core.provenance.traced_ids import decode_ids, encode_ids, hash_prefixes, split_prefixes
from app.core.provenance.verify import verify_statement
from app.core.provenance.write import write_provenance
from app.core.store import Ledger
from tests.core.records import record

MLCROISSANT = Path(sys.executable).parent / "mlcroissant"
COLOURS = ("red", "green", "blue", "amber", "violet")
GENERATIONS = 12
IN_DATASET = 10  # generations 1..10 are exported unchanged; 11 is exported edited; 12 is left out
FOREIGN = [("Where is the nearest lighthouse?", "The nearest lighthouse stands on the northern cape, past the harbour."),
           ("Name a river in Peru.", "The Urubamba flows through the Sacred Valley towards the Amazon basin.")]


def prompt_of(i: int) -> str:
    return f"Describe box number {i} in one sentence."


def response_of(i: int) -> str:
    return (f"Box {i} is a small wooden box painted {COLOURS[i % 5]}, kept on the shelf by the window "
            f"since {1990 + i} and never opened.")


@pytest.fixture
def seeded(ledger: Ledger) -> tuple[Ledger, str]:
    """A ledger with twelve generations by the registered default model, in two workflows."""
    sha = register_model(ledger.db, default_model_path(ledger.db)).sha256
    records = []
    for i in range(GENERATIONS):
        records.append(record(
            i, workflow="boxes-even" if i % 2 == 0 else "boxes-odd", model_sha256=sha, model_name="Gemma",
            source="batch", prompt=prompt_of(i), response=response_of(i), seed=100 + i,
            params={"temperature": 0.7 if i < 6 else 0.9, "top_p": 0.95, "max_tokens": 64, "seed": 100 + i},
            runtime={"llama_cpp_python": "0.3.36", "n_ctx": 1024} if i < 8 else None,
            started_at=f"2026-11-2{1 + i // 6}T10:00:{i:02d}+00:00"))
    ledger.append_many(records)
    return ledger, sha


def dataset_rows() -> list[dict[str, str]]:
    rows = [{"prompt": prompt_of(i), "response": response_of(i)} for i in range(IN_DATASET)]
    edited = response_of(IN_DATASET).replace("small wooden box", "Small Wooden Box").rstrip(".") + "!"
    rows.append({"prompt": prompt_of(IN_DATASET), "response": edited})
    rows += [{"prompt": p, "response": r} for p, r in FOREIGN]
    return rows


def write_dataset(folder: Path, fmt: str, shape: str = "pairs") -> Path:
    """The dataset in a file format (jsonl, json, csv, tsv, parquet) and shape (pairs, sharegpt, messages)."""
    rows: list[dict[str, Any]] = dataset_rows()
    if shape == "sharegpt":
        rows = [{"conversations": [{"from": "human", "value": r["prompt"]}, {"from": "gpt", "value": r["response"]}]}
                for r in rows]
    elif shape == "messages":
        rows = [{"messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["response"]}]}
                for r in rows]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"boxes-{shape}.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif fmt == "json":
        path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    elif fmt in ("csv", "tsv"):
        import csv

        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="," if fmt == "csv" else "\t")
            writer.writeheader()
            writer.writerows(rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def written(tmp_path: Path, ledger: Ledger, dataset: Path, declared: Declared | None = None,
            out: Path | None = None) -> tuple[MatchReport, dict[str, Path]]:
    report = run_match(dataset, ledger.path)
    paths = write_provenance(report, ledger.path, declared or Declared(), out or dataset.parent,
                             key_dir=tmp_path / "keys", screen=False)
    return report, paths


def payload(path: Path) -> dict[str, Any]:
    return json.loads(base64.b64decode(json.loads(path.read_text())["payload"]))


# -- the statement ------------------------------------------------------------------------------


def test_statement_content(seeded: tuple[Ledger, str], tmp_path: Path) -> None:
    ledger, sha = seeded
    dataset = write_dataset(tmp_path / "data", "jsonl")
    report = run_match(dataset, ledger.path)
    assert report.counts == {"traced-exact": IN_DATASET, "traced-near": 1, "untraced": len(FOREIGN)}
    statement = build_statement(report, ledger.path, Declared(license="cc-by-4.0", description="Boxes."),
                                screen=False)
    data = statement["dataset"]
    assert data["name"] == dataset.name and data["sha256"] == hashlib.sha256(dataset.read_bytes()).hexdigest()
    assert data["size_bytes"] == dataset.stat().st_size and data["rows"] == 13 and data["malformed_rows"] == 0
    assert data["format"] == "jsonl" and data["shape"] == "prompt_response"
    assert statement["declared"] == {"name": NOT_DECLARED, "license": "cc-by-4.0", "description": "Boxes.",
                                     "intended_use": NOT_DECLARED, "creator": NOT_DECLARED}
    assert statement["matching"]["counts"]["traced-near"] == 1
    assert statement["matching"]["shares"]["traced-exact"] == round(10 / 13, 6)
    assert statement["matching"]["method"]["near"]["threshold"] > 0
    [model] = statement["models"]
    assert model["sha256"] == sha and model["generations"] == 11 and model["registered"]
    assert model["architecture"] == "gemma3" and model["quantization"] == "Q4_K_M"
    assert model["license"] != "" and model["base_model"] != ""  # from the GGUF, or "unknown"
    runtime = statement["runtime"]
    assert runtime["llama_cpp_python_logged"] == [{"version": "0.3.36", "generations": 8}]
    assert runtime["not_logged"] == 3 and runtime["llama_cpp_python_installed"]
    sampling = statement["sampling"]
    assert sampling["temperature"]["values"] == [{"value": 0.7, "count": 6}, {"value": 0.9, "count": 5}]
    assert sampling["seed"]["distinct"] == 11 and len(sampling["seed"]["values"]) == 11
    assert statement["timeframe"] == {"first_generation": "2026-11-21T10:00:00+00:00",
                                      "last_generation": "2026-11-22T10:00:10+00:00"}
    assert statement["workflows"] == [{"name": "boxes-even", "generations": 6},
                                      {"name": "boxes-odd", "generations": 5}]
    head_id, head_hash, _ = ledger.head()
    assert statement["ledger"]["head_id"] == head_id == GENERATIONS
    assert statement["ledger"]["head_hash"] == head_hash and statement["ledger"]["verified"] is True
    assert statement["screening"]["status"] == "not run"
    traced = statement["traced"]
    assert decode_ids(traced["ids"]) == list(range(1, 12)) and traced["ids"] == "1-11"
    stored = dict(ledger.db.execute("SELECT id, row_hash FROM generations").fetchall())
    assert [stored[i][:12] for i in range(1, 12)] == split_prefixes(traced["row_hash_prefixes"])


def test_seed_summary_lists_few_values_and_ranges_many() -> None:
    from app.core.provenance.statement import ParamSummary

    summary = ParamSummary()
    for i in range(40):
        summary.add({"seed": i, "stop": ["\n"], "temperature": 0.5})
    summary.add(None)
    result = summary.summary()
    assert result["seed"] == {"generations": 40, "distinct": 40, "min": 0, "max": 39}
    assert result["stop"]["values"] == [{"value": ["\n"], "count": 40}]
    assert result["(no parameters logged)"] == {"generations": 1}


def test_traced_list_is_compact_for_100k_rows() -> None:
    ids = [i for i in range(1, 150_001) if i % 3]  # 100,000 ids with gaps
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in ids]
    encoded, prefixes = encode_ids(ids), hash_prefixes(hashes)
    assert decode_ids(encoded) == ids
    assert split_prefixes(prefixes) == [h[:12] for h in hashes]
    assert len(encoded) + len(prefixes) < 2_000_000  # under 20 bytes per traced row
    assert encode_ids([5, 1, 2, 3, 9, 10]) == "1-3,5,9-10" and decode_ids("") == []


def test_statement_needs_a_ledger(seeded: tuple[Ledger, str], tmp_path: Path) -> None:
    from app.core.provenance.statement import StatementError

    ledger, _ = seeded
    report = run_match(write_dataset(tmp_path / "d", "jsonl"), ledger.path)
    with pytest.raises(StatementError, match="no ledger database here"):
        build_statement(report, tmp_path / "missing.db", Declared(), screen=False)


# -- the dataset card -------------------------------------------------------------------------


def test_card_front_matter_and_sections(seeded: tuple[Ledger, str], tmp_path: Path) -> None:
    ledger, sha = seeded
    dataset = write_dataset(tmp_path / "data", "jsonl")
    _, paths = written(tmp_path, ledger, dataset, Declared(license="CC-BY-4.0", description="Painted boxes.",
                                                            intended_use="Teaching provenance.", name="Boxes"))
    text = paths["card"].read_text()
    meta, body = split_front_matter(text)
    assert meta == yaml.safe_load(text.split("---\n")[1])  # plain YAML, parsed by PyYAML
    assert meta["license"] == "cc-by-4.0" and meta["pretty_name"] == "Boxes"
    assert meta["annotations_creators"] == ["machine-generated"] == meta["language_creators"]
    assert "synthetic" in meta["tags"] and meta["size_categories"] == ["n<1K"]
    assert meta["task_categories"] == ["text-generation"]
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": dataset.name}]}]
    for heading in ("#### Data Collection and Processing", "#### Who are the source data producers?",
                    "## Bias, Risks, and Limitations", "### Personal and Sensitive Information"):
        assert heading in body
    assert "Painted boxes." in body and "Teaching provenance." in body
    assert "traced exactly (same normalized prompt and response): 10 rows (76.9%)" in body
    assert "traced nearly (edited after generation): 1 rows (7.7%)" in body
    assert "untraced (not found in the ledger): 2 rows (15.4%)" in body
    assert sha in body and "gemma3" in body and "Q4_K_M" in body
    assert "`temperature`: 0.7 (6), 0.9 (5)" in body and "`boxes-even` (6)" in body


def test_card_says_what_was_not_declared(seeded: tuple[Ledger, str], tmp_path: Path) -> None:
    ledger, _ = seeded
    dataset = write_dataset(tmp_path / "data", "csv")
    _, paths = written(tmp_path, ledger, dataset)
    meta, body = split_front_matter(paths["card"].read_text())
    assert meta["license"] == "unknown" and meta["pretty_name"] == dataset.stem
    assert "_The publisher has not declared a description._" in body
    assert "_The publisher has not declared an intended use._" in body
    assert "**License:** not declared" in body


def test_size_categories() -> None:
    assert [size_category(n) for n in (0, 999, 1000, 54_321, 100_000, 2_000_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M"]


def test_card_renders_from_a_statement_with_failed_chain(seeded: tuple[Ledger, str], tmp_path: Path) -> None:
    ledger, _ = seeded
    report = run_match(write_dataset(tmp_path / "data", "jsonl"), ledger.path)
    statement = build_statement(report, ledger.path, Declared(), screen=False)
    statement["ledger"].update(verified=False, verify_problem="row 3 was edited")
    assert "did NOT verify: row 3 was edited" in render_card(statement, "boxes-pairs.jsonl")


# -- Croissant --------------------------------------------------------------------------------


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MLCROISSANT), "validate", "--jsonld", str(path)], capture_output=True, text=True,
                          timeout=180, env=os.environ | {"HF_HUB_OFFLINE": "1"})


def load_records(path: Path) -> list[dict[str, Any]]:
    code = ("import json, sys, mlcroissant as mlc\n"
            "ds = mlc.Dataset(jsonld=sys.argv[1])\n"
            "def plain(v):\n"
            "    if isinstance(v, bytes): return v.decode('utf-8')\n"
            "    if isinstance(v, dict): return {k.split('/')[-1]: plain(x) for k, x in v.items()}\n"
            "    if isinstance(v, (list, tuple)): return [plain(x) for x in v]\n"
            "    return v.item() if hasattr(v, 'item') else v\n"
            "print(json.dumps([plain(r) for r in ds.records('records')]))\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=180,
                          env=os.environ | {"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize(("fmt", "shape"), [("jsonl", "pairs"), ("csv", "pairs"), ("tsv", "pairs"),
                                            ("parquet", "pairs"), ("json", "pairs"), ("jsonl", "sharegpt"),
                                            ("parquet", "messages")])
def test_croissant_validates_and_loads(seeded: tuple[Ledger, str], tmp_path: Path, fmt: str, shape: str) -> None:
    ledger, sha = seeded
    dataset = write_dataset(tmp_path / "data", fmt, shape)
    report, paths = written(tmp_path, ledger, dataset, Declared(license="cc-by-4.0"), out=tmp_path / "out")
    assert report.counts == {"traced-exact": IN_DATASET, "traced-near": 1, "untraced": len(FOREIGN)}
    doc = json.loads(paths["croissant"].read_text())
    assert doc["conformsTo"] == "http://mlcommons.org/croissant/1.1"
    [file_object] = doc["distribution"]
    assert file_object["sha256"] == report.dataset_sha256 and file_object["contentUrl"] == f"../data/{dataset.name}"
    assert doc["rai:dataCollectionType"] and doc["rai:dataCollectionTimeframe"][0].startswith("2026-11-21")
    assert "15.4% of rows could not be traced" in doc["rai:dataLimitations"]
    assert doc["prov:wasGeneratedBy"]["prov:used"][0]["sha256"] == sha
    done = validate(paths["croissant"])
    assert done.returncode == 0 and "Done" in done.stderr, done.stderr[-3000:]
    records = load_records(paths["croissant"])
    assert len(records) == len(dataset_rows())
    first = dataset_rows()[0]
    if shape == "pairs":
        assert records[0] == first
    elif shape == "sharegpt":
        assert records[0]["conversations"] == [{"from": "human", "value": first["prompt"]},
                                               {"from": "gpt", "value": first["response"]}]
    else:
        assert records[0]["messages"][1] == {"role": "assistant", "content": first["response"]}


# -- the key and the envelope -------------------------------------------------------------------


def test_key_is_made_once_private_and_exportable(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    key = load_or_create_key(folder)
    path = folder / "provenance-ed25519.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    again = load_or_create_key(folder)
    assert key_fingerprint(again) == key_fingerprint(key)
    pem = public_key_pem(key)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----") and "PRIVATE" not in pem
    raw = load_public_key(pem).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key_fingerprint(key) == hashlib.sha256(raw).hexdigest()


def test_key_defaults_to_the_data_folder(home: Path) -> None:
    key = load_or_create_key()
    assert (home / "keys" / "provenance-ed25519.pem").exists()
    assert stat.S_IMODE((home / "keys").stat().st_mode) == 0o700
    assert key_fingerprint(load_or_create_key()) == key_fingerprint(key)


def test_pae_matches_the_dsse_spec() -> None:
    assert pae(PAYLOAD_TYPE, b"{}") == b"DSSEv1 28 application/vnd.in-toto+json 2 {}"


def test_envelope_is_an_in_toto_statement_a_stranger_can_check(seeded: tuple[Ledger, str], tmp_path: Path) -> None:
    ledger, _ = seeded
    dataset = write_dataset(tmp_path / "data", "jsonl")
    report, paths = written(tmp_path, ledger, dataset)
    envelope = json.loads(paths["dsse"].read_text())
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    statement = payload(paths["dsse"])
    assert statement["_type"] == STATEMENT_TYPE and statement["predicateType"] == PREDICATE_TYPE
    assert statement["subject"] == [{"name": dataset.name, "digest": {"sha256": report.dataset_sha256}}]
    signer = statement["predicate"]["signer"]
    key = load_public_key(paths["public_key"])
    assert signer["public_key"] == paths["public_key"].read_text() and signer["keyid"] == key_fingerprint(key)
    [signature] = envelope["signatures"]
    assert signature["keyid"] == key_fingerprint(key)
    # checked with cryptography alone, as someone without Stillroom would
    key.verify(base64.b64decode(signature["sig"]), pae(envelope["payloadType"], base64.b64decode(envelope["payload"])))


# -- verify -------------------------------------------------------------------------------------


@pytest.fixture
def released(seeded: tuple[Ledger, str], tmp_path: Path) -> tuple[Ledger, Path, dict[str, Path]]:
    ledger, _ = seeded
    dataset = write_dataset(tmp_path / "data", "jsonl")
    _, paths = written(tmp_path, ledger, dataset, Declared(license="mit"))
    return ledger, dataset, paths


def test_verify_passes_and_pins_a_key(released: tuple[Ledger, Path, dict[str, Path]]) -> None:
    ledger, dataset, paths = released
    result = verify_statement(paths["dsse"], dataset, ledger_path=ledger.path)
    assert result.ok, result.reasons
    assert [c.name for c in result.checks] == ["signature", "dataset", "chain head", "traced rows", "chain",
                                               "checkpoint", "inclusion"]
    assert not result.pinned and "not pinned" == result.trust
    pinned = verify_statement(paths["dsse"], dataset, public_key=paths["public_key"])
    assert pinned.ok and pinned.pinned and [c.name for c in pinned.checks] == ["signature", "dataset", "checkpoint",
                                                                                  "inclusion"]
    ledger.append(record(99))  # the ledger may grow after the statement
    assert verify_statement(paths["dsse"], dataset, ledger_path=ledger.path).ok


def test_verify_names_a_changed_dataset(released: tuple[Ledger, Path, dict[str, Path]]) -> None:
    _, dataset, paths = released
    data = bytearray(dataset.read_bytes())
    data[40] ^= 0x01
    dataset.write_bytes(bytes(data))
    result = verify_statement(paths["dsse"], dataset)
    assert not result.ok
    assert len(result.reasons) == 2 and result.reasons[0].startswith(
        "dataset sha256 differs from the statement's subject")
    assert result.reasons[1].startswith("dataset row 1: its prompt is not the one ledger row 1 was given")


def test_verify_names_a_modified_statement(released: tuple[Ledger, Path, dict[str, Path]]) -> None:
    _, dataset, paths = released
    envelope = json.loads(paths["dsse"].read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["matching"]["counts"]["untraced"] = 0  # a flattering edit
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    paths["dsse"].write_text(json.dumps(envelope))
    assert verify_statement(paths["dsse"], dataset).reasons == ["signature does not verify: the statement was modified"]


def test_verify_fails_on_any_changed_byte_of_the_statement(released: tuple[Ledger, Path, dict[str, Path]]) -> None:
    _, dataset, paths = released
    original = paths["dsse"].read_bytes()
    start = original.index(b'"payload": "') + 200
    for position in (start, original.index(b'"sig": "') + 12, 0):
        changed = bytearray(original)
        changed[position] = ord("A") if changed[position] != ord("A") else ord("B")
        paths["dsse"].write_bytes(bytes(changed))
        result = verify_statement(paths["dsse"], dataset)
        assert not result.ok and result.reasons[0].startswith("signature does not verify"), result.reasons


def test_verify_with_someone_elses_key_fails(released: tuple[Ledger, Path, dict[str, Path]], tmp_path: Path) -> None:
    _, dataset, paths = released
    other = tmp_path / "other.pem"
    other.write_text(public_key_pem(load_or_create_key(tmp_path / "other-keys")))
    result = verify_statement(paths["dsse"], dataset, public_key=other)
    assert not result.ok and "not by the key given" in result.reasons[0]


def edit_row(ledger: Ledger, sql: str, *params: Any) -> None:
    conn = sqlite3.connect(ledger.path)
    with conn:
        conn.execute(sql, params)
    conn.close()


def test_verify_names_an_edited_ledger_row(released: tuple[Ledger, Path, dict[str, Path]]) -> None:
    ledger, dataset, paths = released
    edit_row(ledger, "UPDATE generations SET response = response || ' ' WHERE id = 7")
    result = verify_statement(paths["dsse"], dataset, ledger_path=ledger.path)
    assert result.reasons == ["ledger row 7 differs from the one the statement traced",
                              "the ledger's hash chain does not verify: row 7 was edited: its content no longer "
                              "matches its hash"]


def test_verify_names_a_removed_ledger_row_and_a_changed_head(released: tuple[Ledger, Path, dict[str, Path]]) -> None:
    ledger, dataset, paths = released
    edit_row(ledger, "DELETE FROM generations WHERE id = 3")
    edit_row(ledger, "UPDATE generations SET seed = 1 WHERE id = ?", GENERATIONS)
    reasons = verify_statement(paths["dsse"], dataset, ledger_path=ledger.path).reasons
    assert reasons[0] == f"ledger row {GENERATIONS} differs from the chain head the statement recorded"
    assert reasons[1] == "ledger row 3, traced by the statement, is missing"
    assert reasons[2].startswith("the ledger's hash chain does not verify: row 3 is missing")
