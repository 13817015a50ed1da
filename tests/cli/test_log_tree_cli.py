"""`stillroom log checkpoint | prove | consistency | verify` on a fresh data folder."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli.main import cli
from app.core.paths import ledger_path
from app.core.provenance.signing import load_or_create_key
from app.core.store import Ledger
from app.core.store.checkpoint import check_consistency_text, check_proof, open_checkpoint
from app.core.store.note import parse_verifier_key
from tests.core.records import record


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STILLROOM_HOME", str(tmp_path / "home"))
    ledger = Ledger.open(ledger_path())
    ledger.append_many([record(i) for i in range(1, 6)])
    ledger.close()
    return tmp_path / "home"


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(cli, list(args))
    assert (result.exit_code == 0) == ok, result.output
    return result


def test_checkpoint_prove_consistency_and_verify(data_home: Path) -> None:
    first = run("log", "checkpoint")
    assert run("log", "checkpoint").stdout == first.stdout  # the tree did not grow: the same checkpoint
    verifier = parse_verifier_key(first.stderr.split("verifier key: ")[1])
    old = open_checkpoint(first.stdout, verifier)
    assert old.size == 5 and verifier.name == old.origin
    assert verifier.public_key.public_bytes_raw() == load_or_create_key().public_key().public_bytes_raw()

    ledger = Ledger.open(ledger_path())
    ledger.append_many([record(i) for i in range(6, 12)])
    ledger.close()
    new = open_checkpoint(run("log", "checkpoint").stdout, verifier)
    assert new.size == 11
    fields, head = check_proof(run("log", "prove", "3").stdout, verifier)
    assert fields.generation_id == 3 and head == new
    check_consistency_text(run("log", "consistency", "5").stdout, old, new)
    assert "sizes must satisfy" in run("log", "consistency", "12", ok=False).output
    assert "not in the ledger" in run("log", "prove", "99", ok=False).output
    assert "Merkle tree intact: 11 leaves" in run("log", "verify").stdout


def test_verify_names_a_row_edited_behind_the_chain(data_home: Path) -> None:
    run("log", "checkpoint")
    conn = sqlite3.connect(ledger_path())
    conn.execute("UPDATE generations SET response = 'changed' WHERE id = 2")
    conn.commit()
    conn.close()
    assert "broken at row 2" in run("log", "verify", ok=False).output
