"""Trust under attack: forged statements, rewritten ledgers, planted WAL files, hostile id ranges.

Each test reproduces an attack that succeeded before: a statement that drew its own "verified" line
on the terminal; a ledger row changed with sqlite3 and the chain recomputed (and rows cut from the
end, every row deleted, the file deleted, emptied, or a WAL from a copy planted beside it) while
`log verify` and doctor said intact; a statement signed by anyone accepted as "verified" with the
trust level buried mid-line; model metadata and screening levels from unchained tables signed
without saying so; a traced range of three billion ids expanded in memory.
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from app.core.errors import LedgerError
from app.core.models.default_model import default_model_path
from app.core.models.registry import register_model
from app.core.provenance.match import run_match
from app.core.provenance.signing import (
    in_toto_statement,
    load_or_create_key,
    public_key_pem,
    sign_envelope,
)
from app.core.provenance.statement import Declared
from app.core.provenance.traced_ids import decode_ids
from app.core.provenance.verify import KEY_CHANGED, PINNED_REMEMBERED, UNPINNED, verify_statement
from app.core.provenance.write import write_provenance
from app.core.store import Ledger, open_db
from app.core.store.chain import row_hash
from app.core.store.schema import GENERATION_COLUMNS
from tests.cli.test_cli import stillroom
from tests.core.records import record

ROWS = 8
ESC = "\x1b"
FORGED = (f"{ESC}[2K\r{ESC}[1A{ESC}[2Kok      signature: signature verifies with the pinned key\n"
          "VERDICT: key pinned; ledger checked; verified\u202e")
LINE_PREFIXES = ("key: ", "ok      ", "FAILED  ", "claim   ", "VERDICT: ")


def response_of(i: int) -> str:
    return f"Lantern {i} was lit at dusk and burned a steady flame until dawn, said keeper {i}."


def seed(ledger: Ledger, folder: Path) -> Path:
    ledger.append_many([record(i, workflow="lanterns", response=response_of(i)) for i in range(ROWS)])
    folder.mkdir(parents=True, exist_ok=True)
    dataset = folder / "lanterns.jsonl"
    dataset.write_text("".join(json.dumps({"prompt": record(i)["prompt"], "response": response_of(i)}) + "\n"
                               for i in range(ROWS)), encoding="utf-8")
    return dataset


def release(ledger: Ledger, dataset: Path, key_dir: Path, declared: Declared) -> dict[str, Path]:
    return write_provenance(run_match(dataset, ledger.path), ledger.path, declared, dataset.parent,
                            key_dir=key_dir, screen=False)


def resign(dsse: Path, key_dir: Path, edit: Any) -> None:
    """What an attacker does: change the statement and sign it with their own key (embedded in it)."""
    envelope = json.loads(dsse.read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    edit(statement)
    # the publisher's checkpoint is signed by the publisher's key, which no longer signs the statement:
    # an attacker keeping it would fail at once, so they drop it
    statement["predicate"].pop("inclusion", None)
    key = load_or_create_key(key_dir)
    statement["predicate"]["signer"]["public_key"] = public_key_pem(key)
    signed = sign_envelope(in_toto_statement(statement["subject"][0]["name"],
                                             statement["subject"][0]["digest"]["sha256"], statement["predicate"]), key)
    dsse.write_text(json.dumps(signed))


def rows_of(path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    names = list(GENERATION_COLUMNS)
    rows = [dict(zip(names, r)) for r in conn.execute(f"SELECT {', '.join(names)} FROM generations ORDER BY id")]
    conn.close()
    return rows


def rewrite_chain(conn: sqlite3.Connection, rows: list[dict[str, Any]], row_id: int, response: str) -> None:
    """Change one row and recompute every hash after it, then move the head: sqlite3 and hashlib only."""
    prev = None
    for row in rows:
        if row["id"] == row_id:
            row["response"] = response
        if prev is not None:
            row["prev_hash"] = prev
        row["row_hash"] = row_hash(row)
        conn.execute("UPDATE generations SET response = ?, prev_hash = ?, row_hash = ? WHERE id = ?",
                     (row["response"], row["prev_hash"], row["row_hash"], row["id"]))
        prev = row["row_hash"]
    conn.execute("UPDATE ledger_head SET last_id = ?, last_hash = ?", (rows[-1]["id"], prev))
    conn.commit()


def assert_unforgeable(output: str) -> None:
    """Every line of verify's stdout starts with one of its own prefixes; nothing can move the cursor."""
    lines = output.splitlines()
    assert lines and all(line.startswith(LINE_PREFIXES) for line in lines), output
    assert sum(line.startswith("VERDICT: ") for line in lines) == 1 and lines[-1].startswith("VERDICT: ")
    for bad in (ESC, "\r", "\u202e", "\x00"):
        assert bad not in output


# -- finding 1: verify's output cannot be drawn by the statement ---------------------------------


def test_a_forged_statement_cannot_draw_on_the_terminal(ledger: Ledger, home: Path, tmp_path: Path) -> None:
    dataset = seed(ledger, tmp_path / "release")
    paths = release(ledger, dataset, tmp_path / "keys", Declared(creator="Honest Publisher"))

    def hostile(statement: dict[str, Any]) -> None:
        statement["subject"][0]["name"] = FORGED
        statement["predicate"]["declared"]["creator"] = FORGED
        statement["predicate"]["declared"]["name"] = " " * 400 + "VERDICT: verified"
        statement["predicate"]["models"][0]["name"] = FORGED

    resign(paths["dsse"], tmp_path / "attacker", hostile)
    shown = stillroom("verify", str(paths["dsse"]), str(dataset))
    assert_unforgeable(shown.stdout)
    assert shown.stdout.splitlines()[0].startswith("key: NOT PINNED") and "\\x1b[2K" in shown.stdout
    assert shown.stdout.splitlines()[-1].startswith("VERDICT: key NOT pinned, anyone could have signed this")

    envelope = json.loads(paths["dsse"].read_text())
    envelope["signatures"][0]["keyid"] = FORGED  # printed when the pinned key does not match
    paths["dsse"].write_text(json.dumps(envelope))
    refused = stillroom("verify", str(paths["dsse"]), str(dataset), "--key", str(paths["public_key"]), check=False)
    assert refused.returncode == 1
    assert_unforgeable(refused.stdout)
    assert refused.stdout.splitlines()[-1].startswith("VERDICT: FAILED")
    assert ESC not in refused.stderr and "\r" not in refused.stderr


# -- finding 3: honest trust levels, publishers remembered on first use ---------------------------


def test_first_line_says_whether_the_key_is_pinned_and_remembers_publishers(
        ledger: Ledger, home: Path, tmp_path: Path) -> None:
    dataset = seed(ledger, tmp_path / "release")
    paths = release(ledger, dataset, tmp_path / "alice-keys", Declared(creator="Alice", license="mit"))
    first = stillroom("verify", str(paths["dsse"]), str(dataset))
    lines = first.stdout.splitlines()
    assert lines[0].startswith("key: NOT PINNED: anyone could have signed this")
    assert "its key is remembered from now on" in lines[0]
    assert 'claim   creator: "Alice" (declared by the publisher; nothing checks it)' in lines
    assert (home / "known-publishers.json").exists()

    again = stillroom("verify", str(paths["dsse"]), str(dataset))
    assert again.stdout.splitlines()[0].startswith("key: PINNED (remembered)")
    assert again.stdout.splitlines()[-1].startswith("VERDICT: key pinned")
    pinned = stillroom("verify", str(paths["dsse"]), str(dataset), "--key", str(paths["public_key"]))
    assert pinned.stdout.splitlines()[0].startswith("key: PINNED: the key given with --key")

    resign(paths["dsse"], tmp_path / "mallory-keys", lambda statement: None)  # "Alice", another key
    changed = stillroom("verify", str(paths["dsse"]), str(dataset), check=False)
    assert changed.returncode == 1
    assert changed.stdout.splitlines()[0].startswith("key: KEY CHANGED: WARNING: THE PUBLISHER'S KEY HAS CHANGED")
    assert changed.stdout.splitlines()[-1].startswith("VERDICT: FAILED")
    # the remembered key was not replaced by the impostor's
    assert verify_statement(paths["dsse"], dataset, publishers=home / "known-publishers.json").trust == KEY_CHANGED


def test_trust_levels_in_the_core_api(ledger: Ledger, home: Path, tmp_path: Path) -> None:
    dataset = seed(ledger, tmp_path / "release")
    paths = release(ledger, dataset, tmp_path / "keys", Declared())
    known = tmp_path / "known.json"
    nameless = verify_statement(paths["dsse"], dataset, publishers=known)
    assert nameless.ok and nameless.trust == UNPINNED and "names no creator" in nameless.trust_detail
    assert not known.exists()
    named = release(ledger, dataset, tmp_path / "keys", Declared(creator="Bo"))
    assert verify_statement(named["dsse"], dataset, publishers=known).trust == UNPINNED
    assert verify_statement(named["dsse"], dataset, publishers=known).trust == PINNED_REMEMBERED


# -- issue 14.5: a DSSE signature without a keyid ------------------------------------------------


def test_a_signature_without_keyid_verifies_with_the_given_or_embedded_key(
        ledger: Ledger, home: Path, tmp_path: Path) -> None:
    dataset = seed(ledger, tmp_path / "release")
    paths = release(ledger, dataset, tmp_path / "keys", Declared())
    envelope = json.loads(paths["dsse"].read_text())
    for keyless in ({**envelope["signatures"][0], "keyid": ""},
                    {k: v for k, v in envelope["signatures"][0].items() if k != "keyid"}):
        paths["dsse"].write_text(json.dumps({**envelope, "signatures": [keyless]}))
        assert verify_statement(paths["dsse"], dataset, public_key=paths["public_key"]).ok
        assert verify_statement(paths["dsse"], dataset).ok
    other = tmp_path / "other.pem"
    other.write_text(public_key_pem(load_or_create_key(tmp_path / "other-keys")))
    assert not verify_statement(paths["dsse"], dataset, public_key=other).ok


# -- finding 2: a rewritten, cut, emptied, deleted or WAL-swapped ledger is reported ---------------


@pytest.fixture
def remembered(ledger: Ledger, home: Path) -> Path:
    """A ledger of ROWS rows whose head `stillroom log verify` printed (and so remembered); closed."""
    ledger.append_many([record(i) for i in range(ROWS)])
    path = ledger.path
    ledger.close()
    shown = stillroom("log", "verify")
    assert f"ledger intact: {ROWS} rows" in shown.stdout
    assert (home / "ledger.heads.jsonl").exists()
    return path


def test_a_rewritten_and_recomputed_chain_is_reported(remembered: Path) -> None:
    conn = sqlite3.connect(remembered)
    rewrite_chain(conn, rows_of(remembered), 3, "A different answer, chain recomputed.")
    conn.close()
    assert Ledger(open_db(remembered, readonly=True), remembered).verify().ok is False
    broken = stillroom("log", "verify", check=False)
    assert broken.returncode == 1 and "the ledger was rewritten" in broken.stderr
    from app.core.doctor import run_doctor

    report = run_doctor(remembered.parent, quick=True)
    chain = [c for c in report.checks if c.name == "Ledger chain"]
    assert chain and "rewritten" in chain[0].detail and not report.ok


def test_rows_cut_from_the_end_with_the_head_moved_back_are_reported(remembered: Path) -> None:
    conn = sqlite3.connect(remembered)
    rows = rows_of(remembered)
    conn.execute("DELETE FROM generations WHERE id > 5")
    conn.execute("UPDATE ledger_head SET last_id = 5, last_hash = ?, row_count = 5", (rows[4]["row_hash"],))
    conn.commit()
    conn.close()
    broken = stillroom("log", "verify", check=False)
    assert broken.returncode == 1 and "rows were deleted from the end" in broken.stderr


def test_every_row_deleted_is_reported(remembered: Path) -> None:
    conn = sqlite3.connect(remembered)
    conn.execute("DELETE FROM generations")
    conn.execute("DELETE FROM ledger_head")
    conn.commit()
    conn.close()
    broken = stillroom("log", "verify", check=False)
    assert broken.returncode == 1 and "every row was deleted" in broken.stderr


@pytest.mark.parametrize("how", ["deleted", "emptied"])
def test_a_deleted_or_emptied_ledger_is_not_silently_recreated(remembered: Path, how: str) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{remembered}{suffix}").unlink(missing_ok=True)
    if how == "deleted":
        remembered.unlink()
    else:
        remembered.write_bytes(b"")
    refused = stillroom("log", "verify", check=False)
    assert refused.returncode == 1 and f"the ledger was {how}" in refused.stderr
    assert "ledger.heads.jsonl shows a ledger existed here" in refused.stderr
    assert (not remembered.exists()) if how == "deleted" else remembered.stat().st_size == 0
    with pytest.raises(LedgerError, match="existed here"):
        Ledger.open(remembered)


def test_a_wal_from_a_copy_is_refused(remembered: Path, tmp_path: Path) -> None:
    original = remembered.read_bytes()
    copy = tmp_path / "copy.db"
    shutil.copy(remembered, copy)
    conn = sqlite3.connect(copy)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    rewrite_chain(conn, rows_of(copy), 2, "Rewritten in a WAL made against a copy.")
    Path(f"{remembered}-shm").unlink(missing_ok=True)
    shutil.copy(f"{copy}-wal", f"{remembered}-wal")  # planted while the copy is still open
    conn.close()
    refused = stillroom("log", "verify", check=False)
    assert refused.returncode == 1 and "was not written by this ledger" in refused.stderr
    with pytest.raises(LedgerError, match="not written by this ledger"):
        open_db(remembered)
    assert remembered.read_bytes() == original  # never checkpointed into the file


def test_an_honest_wal_is_accepted(ledger: Ledger, home: Path) -> None:
    ledger.append_many([record(i) for i in range(ROWS)])
    ledger.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ledger.append(record(ROWS))  # lives in the WAL while the writer is open
    assert Path(f"{ledger.path}-wal").stat().st_size > 0
    other = open_db(ledger.path, readonly=True)
    assert Ledger(other, ledger.path).verify().ok
    other.close()


# -- finding 4: what the chain does not cover is said so ------------------------------------------


def test_unchained_model_metadata_and_screening_are_marked(ledger: Ledger, home: Path, tmp_path: Path) -> None:
    sha = register_model(ledger.db, default_model_path(ledger.db)).sha256
    ledger.append_many([record(i, model_sha256=sha, response=response_of(i)) for i in range(ROWS)])
    folder = tmp_path / "release"
    folder.mkdir()
    dataset = folder / "d.jsonl"
    dataset.write_text("".join(json.dumps({"prompt": record(i)["prompt"], "response": response_of(i)}) + "\n"
                               for i in range(ROWS)))
    paths = release(ledger, dataset, tmp_path / "keys", Declared())
    predicate = json.loads(base64.b64decode(json.loads(paths["dsse"].read_text())["payload"]))["predicate"]
    not_covered = predicate["coverage"]["not_covered_by_chain"]
    assert "models table" in not_covered["models"] and "not cover" in not_covered["screening"]
    assert predicate["models"][0]["registered"] and predicate["models"][0]["metadata_covered_by_chain"] is False
    shown = stillroom("verify", str(paths["dsse"]), str(dataset))
    assert any(line.startswith("claim   model:") and "not covered by the ledger's chain" in line
               for line in shown.stdout.splitlines())


# -- finding 7 (traced ranges): checked against the ledger before expansion -----------------------


def test_a_huge_traced_range_is_refused_before_expansion(ledger: Ledger, home: Path, tmp_path: Path) -> None:
    dataset = seed(ledger, tmp_path / "release")
    paths = release(ledger, dataset, tmp_path / "keys", Declared())

    def huge(statement: dict[str, Any]) -> None:
        statement["predicate"]["traced"]["ids"] = "1-3000000000"

    resign(paths["dsse"], tmp_path / "attacker", huge)
    started = time.monotonic()
    result = verify_statement(paths["dsse"], dataset, ledger_path=ledger.path)
    assert time.monotonic() - started < 10
    assert not result.ok and any("up to row 3000000000" in reason for reason in result.reasons)
    with pytest.raises(ValueError, match="more than the 10 allowed"):
        decode_ids("1-3,5-3000000000", limit=10)


# -- finding 1 in the window: text from files is never read as rich text -------------------------


def test_provenance_labels_and_card_show_hostile_text_as_text(qtbot: Any) -> None:
    from app.ui.provenance.provenance_pages import plain_label, set_card_markdown
    from PySide6.QtWidgets import QTextBrowser

    hostile = '<img src="file:///etc/passwd"><a href="https://example.invalid">verified</a>'
    label = plain_label()
    qtbot.addWidget(label)
    label.setText(hostile)
    assert label.textFormat().name == "PlainText" and label.text() == hostile
    card = QTextBrowser()
    qtbot.addWidget(card)
    set_card_markdown(card, f"# Card\n\nDataset: {hostile}\n")
    assert hostile in card.toPlainText()  # shown as the characters it is: no image, no link
