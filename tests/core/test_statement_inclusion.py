"""Statements that prove their rows without the ledger: the batch inclusion proof, the checkpoint,
the checkpoints a verifier remembers, and what each kind of tampering is reported as."""

from __future__ import annotations

import base64
import json
import random
import shutil
import sqlite3
import zlib
from pathlib import Path
from typing import Any

import pytest

from app.core.provenance import inclusion_codec as codec
from app.core.provenance.checkpoints_seen import CheckpointsSeen
from app.core.provenance.match import run_match
from app.core.provenance.signing import in_toto_statement, load_or_create_key, sign_envelope
from app.core.provenance.statement import Declared
from app.core.provenance.verify import VerifyResult, verify_statement
from app.core.provenance.write import write_provenance
from app.core.store import Ledger
from app.core.store.commitment import SALT_BYTES
from app.core.store.checkpoint import consistency_text, latest_checkpoint, open_checkpoint, log_verifier
from app.core.store.merkle import Frontier, inclusion_proof, leaf_hash
from app.core.store.multiproof import prove_leaves, root_from_leaves
from tests.core.records import record

ROWS = 40


def response_of(i: int) -> str:
    return f"The heron {i} stood in the reeds for an hour and caught {i % 7} fish before the rain came."


def rows(start: int, stop: int) -> list[dict[str, Any]]:
    return [record(i, workflow="herons", response=response_of(i)) for i in range(start, stop)]


def publish(ledger: Ledger, folder: Path, keys: Path, picked: list[int], edit: dict[int, str] | None = None,
            ) -> dict[str, Path]:
    """A dataset of the rows `picked` (some edited, for near rows), its statement written beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    dataset = folder / "herons.jsonl"
    lines = []
    for i in picked:
        response = (edit or {}).get(i, response_of(i))
        lines.append(json.dumps({"prompt": record(i)["prompt"], "response": response}) + "\n")
    dataset.write_text("".join(lines), encoding="utf-8")
    paths = write_provenance(run_match(dataset, ledger.path), ledger.path, Declared(creator="Heron Press"), folder,
                             key_dir=keys, screen=False)
    return {**paths, "dataset": dataset}


def moved(paths: dict[str, Path], to: Path) -> tuple[Path, Path]:
    """The statement and the dataset alone in another folder (no ledger there)."""
    to.mkdir(parents=True)
    return Path(shutil.copy(paths["dsse"], to)), Path(shutil.copy(paths["dataset"], to))


def verify(statement: Path, dataset: Path, seen: Path | None = None, **kw: Any) -> VerifyResult:
    return verify_statement(statement, dataset, checkpoints_seen=seen, **kw)


def failed(result: VerifyResult) -> list[tuple[str, str]]:
    return [(c.name, c.detail) for c in result.checks if not c.ok]


def resign(statement: Path, keys: Path, edit: Any) -> None:
    """Change the statement and sign it again with the same key (the publisher, or whoever holds it)."""
    envelope = json.loads(statement.read_text())
    body = json.loads(base64.b64decode(envelope["payload"]))
    edit(body["predicate"])
    signed = sign_envelope(in_toto_statement(body["subject"][0]["name"], body["subject"][0]["digest"]["sha256"],
                                             body["predicate"]), load_or_create_key(keys))
    statement.write_text(json.dumps(signed))


def edit_proof(predicate: dict[str, Any], change: Any) -> None:
    raw = bytearray(zlib.decompress(base64.b64decode(predicate["inclusion"]["proof"])))
    change(raw)
    predicate["inclusion"]["proof"] = base64.b64encode(zlib.compress(bytes(raw))).decode()


# -- the multiproof ----------------------------------------------------------------------------


def test_multiproof_gives_the_root_for_any_set_of_leaves_and_refuses_a_wrong_one() -> None:
    rng = random.Random(7)
    for size in list(range(1, 70)) + [255, 256, 257, 1000]:
        frontier, stored = Frontier(), []
        leaves = [leaf_hash(f"leaf {i}".encode()) for i in range(size)]
        for leaf in leaves:
            stored.extend(frontier.append(leaf))
        read = lambda idx: [stored[i] for i in idx]  # noqa: E731
        for _ in range(4):
            picked = sorted(rng.sample(range(size), rng.randint(1, min(size, 12))))
            nodes = prove_leaves(size, picked, read)
            assert root_from_leaves(size, picked, [leaves[i] for i in picked], nodes) == frontier.root()
            separate = sum(len(inclusion_proof(size, i, read)) for i in picked)
            assert len(nodes) <= separate
            if nodes:
                bad = list(nodes)
                bad[0] = bytes(32)
                assert root_from_leaves(size, picked, [leaves[i] for i in picked], bad) != frontier.root()
                assert root_from_leaves(size, picked, [leaves[i] for i in picked], nodes[:-1]) is None
            assert root_from_leaves(size, picked, [leaves[i] for i in picked], nodes + [bytes(32)]) is None
            other = [leaf_hash(b"x")] + [leaves[i] for i in picked[1:]]
            assert root_from_leaves(size, picked, other, nodes) != frontier.root()
    run = list(range(1000, 3000))
    frontier, stored = Frontier(), []
    for i in range(4096):
        stored.extend(frontier.append(leaf_hash(str(i).encode())))
    assert len(prove_leaves(4096, run, lambda idx: [stored[i] for i in idx])) <= 2 * 12


def test_codec_bounds_hostile_bytes() -> None:
    entry = codec.Entry(3, 0, b"s" * SALT_BYTES, b"r" * 32, codec.PROMPT_FROM_ROW, None, b"abcd", b"ef")
    blob = codec.encode([entry], [b"n" * 32])
    assert codec.decode(blob) == ([entry], [b"n" * 32])
    with pytest.raises(codec.CodecError, match="more than the 0 allowed"):
        codec.decode(blob, max_entries=0)
    with pytest.raises(codec.CodecError, match="not zlib"):
        codec.decode(b"not zlib at all")
    huge = zlib.compress(codec.MAGIC + b"\x01\x00" + b"\x00" * 5_000_000)  # a zip bomb behind a small header
    with pytest.raises(codec.CodecError, match="more than their header says"):
        codec.decode(huge)
    with pytest.raises(codec.CodecError, match="ends inside"):
        codec.decode(zlib.compress(codec.MAGIC + b"\x01\x00\x03\x00\x00" + b"s" * 10))
    with pytest.raises(ValueError, match="a salt is"):
        codec.encode([codec.Entry(3, 0, b"s" * 32, b"r" * 32, codec.PROMPT_FROM_ROW, None, b"abcd", b"ef")], [])


# -- publishing and verifying without the ledger ------------------------------------------------


def test_statement_verifies_without_the_ledger_and_names_each_tampered_part(ledger: Ledger, home: Path,
                                                                          tmp_path: Path) -> None:
    ledger.append_many(rows(0, ROWS))
    picked = [3, 4, 5, 6, 9, 17, 30, 31, 2]
    paths = publish(ledger, tmp_path / "release", tmp_path / "keys", picked, edit={2: response_of(2).upper()})
    predicate = json.loads(base64.b64decode(json.loads(paths["dsse"].read_text())["payload"]))["predicate"]
    assert predicate["inclusion"]["rows"] == 8 and predicate["matching"]["counts"]["traced-near"] == 1
    statement, dataset = moved(paths, tmp_path / "elsewhere")
    result = verify(statement, dataset, tmp_path / "seen.json")
    assert result.ok, failed(result)
    names = [c.name for c in result.checks]
    assert names == ["signature", "dataset", "checkpoint", "inclusion", "consistency"]
    assert "all 8 exactly traced dataset rows" in result.checks[3].detail
    assert any(what == "near-traced" and "no inclusion proof covers them" in text for what, text in result.claims)

    # a changed byte of a response in the dataset (its digest and its row both fail, the row named)
    lines = dataset.read_text().splitlines(keepends=True)
    lines[5] = lines[5].replace("heron", "herob", 1)
    dataset.write_text("".join(lines))
    bad = failed(verify(statement, dataset))
    assert bad[0][0] == "dataset" and bad[1][0] == "inclusion"
    assert "dataset row 6: its response is not the one ledger row 18 generated" in bad[1][1]
    shutil.copy(paths["dataset"], dataset)

    # a changed byte of the proof material (a salt), the statement signed again
    resign(statement, tmp_path / "keys", lambda p: edit_proof(p, lambda raw: raw.__setitem__(12, raw[12] ^ 1)))
    bad = failed(verify(statement, dataset))
    assert [name for name, _ in bad] == ["inclusion proof"] and "does not lead to the checkpoint's root" in bad[0][1]

    # a changed byte of the checkpoint
    shutil.copy(paths["dsse"], statement)

    def change_checkpoint(p: dict[str, Any]) -> None:
        note = p["inclusion"]["checkpoint"]
        lines = note.split("\n")
        lines[1] = str(int(lines[1]) + 1)
        p["inclusion"]["checkpoint"] = "\n".join(lines)

    resign(statement, tmp_path / "keys", change_checkpoint)
    bad = failed(verify(statement, dataset))
    assert [name for name, _ in bad] == ["checkpoint"] and "does not verify: the note was altered" in bad[0][1]

    # a row left out of the proof
    shutil.copy(paths["dsse"], statement)
    resign(statement, tmp_path / "keys", lambda p: p["matching"]["counts"].__setitem__("traced-exact", 9))
    bad = failed(verify(statement, dataset))
    assert bad[0][0] == "inclusion proof" and "counts 9 exactly traced rows but proves 8" in bad[0][1]

    # a checkpoint signed by another key (the statement re-signed by someone else)
    shutil.copy(paths["dsse"], statement)
    resign(statement, tmp_path / "attacker", lambda p: p["signer"].update(
        public_key=__import__("app.core.provenance.signing", fromlist=["x"]).public_key_pem(
            load_or_create_key(tmp_path / "attacker"))))
    bad = failed(verify(statement, dataset))
    assert [name for name, _ in bad] == ["checkpoint"] and "no signature by the key" in bad[0][1]

    # a flipped byte anywhere in the signed statement: its signature fails first
    shutil.copy(paths["dsse"], statement)
    text = statement.read_text()
    at = text.index('"payload": "') + 400
    statement.write_text(text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:])
    assert failed(verify(statement, dataset))[0][0] == "signature"


def test_proof_from_another_tree_fails(ledger: Ledger, home: Path, tmp_path: Path) -> None:
    ledger.append_many(rows(0, ROWS))
    paths = publish(ledger, tmp_path / "release", tmp_path / "keys", [1, 2, 3])
    ledger.append_many(rows(ROWS, ROWS + 5))
    later = publish(ledger, tmp_path / "later", tmp_path / "keys", [1, 2, 3])
    old = json.loads(base64.b64decode(json.loads(paths["dsse"].read_text())["payload"]))["predicate"]["inclusion"]
    resign(later["dsse"], tmp_path / "keys", lambda p: p["inclusion"].update(proof=old["proof"]))
    bad = failed(verify(later["dsse"], later["dataset"]))
    assert [name for name, _ in bad] == ["inclusion proof"] and "from another tree" in bad[0][1]


def test_verifier_remembers_checkpoints_checks_consistency_and_reports_a_fork(ledger: Ledger, home: Path,
                                                                            tmp_path: Path) -> None:
    ledger.append_many(rows(0, ROWS))
    seen = tmp_path / "seen.json"
    first = publish(ledger, tmp_path / "one", tmp_path / "keys", [1, 2])
    assert "first checkpoint seen" in verify(first["dsse"], first["dataset"], seen).checks[-1].detail
    assert "the same checkpoint" in verify(first["dsse"], first["dataset"], seen).checks[-1].detail
    fork_copy = tmp_path / "fork.db"
    with sqlite3.connect(ledger.path) as source, sqlite3.connect(fork_copy) as copy:
        source.backup(copy)

    ledger.append_many(rows(ROWS, ROWS + 7))
    second = publish(ledger, tmp_path / "two", tmp_path / "keys", [1, 2, ROWS + 3])
    result = verify(second["dsse"], second["dataset"], seen)
    assert result.ok and "extends the checkpoint of 40 rows" in result.checks[-1].detail

    # the statement carries no proof from what this verifier saw: a proof given by hand is checked
    key = load_or_create_key(tmp_path / "keys")
    ledger.append_many(rows(ROWS + 7, ROWS + 9))
    third = publish(ledger, tmp_path / "three", tmp_path / "keys", [1])
    resign(third["dsse"], tmp_path / "keys", lambda p: p["inclusion"].update(consistency=[]))
    asked = verify(third["dsse"], third["dataset"], seen)
    assert not asked.ok and "stillroom log consistency 47 49" in failed(asked)[0][1]
    given = tmp_path / "consistency.txt"
    given.write_text(consistency_text(ledger.db.conn, 47, 49))
    assert verify(third["dsse"], third["dataset"], seen, consistency=given).ok

    # the same key signs a different tree of a size seen before: a fork
    forked = Ledger.open(fork_copy)
    forked.append_many([record(i, workflow="other", response=f"Another history {i}.") for i in range(7)])
    signed = latest_checkpoint(forked.db.conn, key)
    checkpoint = open_checkpoint(signed, log_verifier(forked.db.conn, key))
    forked.close()
    meeting = CheckpointsSeen(seen).meet(verify(first["dsse"], first["dataset"]).keyid or "", checkpoint, [])
    assert meeting.fork and not meeting.ok and "FORK" in meeting.detail
