"""The ledger's Merkle tree: RFC 6962 hashing, the stored tree, its migration, tampering caught
through the tree, signed checkpoints and tlog-proof texts checked and refused."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core.store import Ledger, open_db
from app.core.store.chain import row_hash
from app.core.store.checkpoint import (
    ProofError,
    check_consistency_text,
    check_proof,
    consistency_text,
    latest_checkpoint,
    log_verifier,
    open_checkpoint,
    prove_row_text,
    signed_roots,
)
from app.core.store.commitment import SALT_BYTES, LeafDataError, leaf_data, parse_leaf_data
from app.core.store.merkle import (
    EMPTY_ROOT,
    Frontier,
    check_consistency,
    check_inclusion,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    stored_hash_index,
)
from app.core.store.migrations import migrations
from app.core.store.note import NoteError, parse_verifier_key, sign_note
from app.core.store.tree import HASHES_TABLE, root, tree_size, verify_tree
from app.core.textnorm import content_hash
from tests.core.records import record

ROWS = 8


def mth(entries: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, written out recursively."""
    if not entries:
        return EMPTY_ROOT
    if len(entries) == 1:
        return leaf_hash(entries[0])
    k = 1 << ((len(entries) - 1).bit_length() - 1)
    return node_hash(mth(entries[:k]), mth(entries[k:]))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    file = tmp_path / "ledger.db"
    ledger = Ledger.open(file)
    ledger.append_many([record(i) for i in range(1, 4)])
    for i in range(4, ROWS + 1):
        ledger.append(record(i))
    ledger.close()
    return file


def check(file: Path, anchors: dict[int, bytes] | None = None):
    db = open_db(file)
    try:
        return verify_tree(db.conn, anchors if anchors is not None else signed_roots(db.conn))
    finally:
        db.close()


def tamper(file: Path, *statements: str) -> None:
    conn = sqlite3.connect(file)
    for sql in statements:
        conn.execute(sql)
    conn.commit()
    conn.close()


def test_hashing_and_proofs_match_rfc_6962_and_refuse_wrong_input() -> None:
    entries = [b"%d" % i for i in range(40)]
    frontier, stored = Frontier(), []
    for entry in entries:
        stored.extend(frontier.append(leaf_hash(entry)))
    def read(indexes):
        return [stored[i] for i in indexes]
    for size in range(1, 41):
        top = mth(entries[:size])
        for index in range(size):
            proof = inclusion_proof(size, index, read)
            assert check_inclusion(proof, size, top, index, leaf_hash(entries[index]))
            assert not check_inclusion(proof, size, top, index, leaf_hash(b"guess"))
            assert not check_inclusion(proof, size, leaf_hash(b"root"), index, leaf_hash(entries[index]))
            assert not check_inclusion(proof + [top], size, top, index, leaf_hash(entries[index]))
            if size > 1:
                assert not check_inclusion(proof, size, top, (index + 1) % size, leaf_hash(entries[index]))
        for old in range(1, size + 1):
            proof = consistency_proof(old, size, read)
            assert check_consistency(proof, size, top, old, mth(entries[:old]))
            if old < size:
                assert not check_consistency(proof, size, top, old, mth(entries[1:old + 1]))
    assert not check_inclusion([], 0, EMPTY_ROOT, 0, leaf_hash(b""))
    with pytest.raises(ValueError):
        inclusion_proof(3, 3, read)


def test_every_row_is_a_leaf_and_the_stored_tree_is_complete(path: Path) -> None:
    db = open_db(path)
    conn = db.conn
    assert tree_size(conn) == ROWS
    assert conn.execute(f"SELECT count(*) FROM {HASHES_TABLE}").fetchone()[0] == 2 * ROWS - bin(ROWS).count("1")
    salts = [bytes(s) for (s,) in conn.execute(f"SELECT salt FROM {HASHES_TABLE} WHERE salt IS NOT NULL")]
    assert len(salts) == ROWS and len(set(salts)) == ROWS and all(len(s) == SALT_BYTES for s in salts)
    result = verify_tree(conn)
    assert result.ok and result.leaves == ROWS and result.root == root(conn, ROWS)
    db.close()


def test_leaf_is_a_salted_commitment_a_guess_cannot_confirm(path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    db = open_db(path)
    text = prove_row_text(db.conn, 3, key)
    fields, _ = check_proof(text, log_verifier(db.conn, key))
    prompt = record(3)["prompt"]
    assert fields.prompt_hash == content_hash(prompt) and fields.response_hash == content_hash(record(3)["response"])
    # Someone who guesses the prompt exactly but lacks the salt cannot rebuild the leaf.
    other_salt = type(fields)(fields.generation_id, b"\x00" * SALT_BYTES, fields.row_hash, fields.prompt_hash,
                              fields.response_hash)
    stored_leaf = db.conn.execute(f"SELECT hash FROM {HASHES_TABLE} WHERE idx = ?",
                                  (stored_hash_index(0, fields.generation_id - 1),)).fetchone()[0]
    assert fields.leaf_hash() == bytes(stored_leaf)
    assert other_salt.leaf_hash() != fields.leaf_hash()
    # The proof discloses row 3's salt and no other row's.
    salts = {gid: bytes(db.conn.execute(f"SELECT salt FROM {HASHES_TABLE} WHERE idx = ?",
                                        (stored_hash_index(0, gid - 1),)).fetchone()[0]).hex()
             for gid in range(1, ROWS + 1)}
    decoded = base64.b64decode(text.splitlines()[1].split()[1]).decode()
    assert salts[3] in decoded and not any(salts[g] in text or salts[g] in decoded for g in salts if g != 3)
    db.close()


def test_migration_builds_the_tree_for_an_old_ledger_and_leaves_the_chain(tmp_path: Path) -> None:
    file = tmp_path / "old.db"
    old = open_db(file, migrate=False)
    migrations.apply(old, stop_before="m011_merkle_tree")
    Ledger(old, file).append_many([record(i) for i in range(1, 12)])
    before = old.execute("SELECT id, prev_hash, row_hash FROM generations ORDER BY id").fetchall()
    assert HASHES_TABLE not in old.table_names()
    old.close()
    ledger = Ledger.open(file)
    assert ledger.db.execute("SELECT id, prev_hash, row_hash FROM generations ORDER BY id").fetchall() == before
    assert ledger.verify().ok and tree_size(ledger.db.conn) == 11
    ledger.append(record(12))
    result = verify_tree(ledger.db.conn)
    assert result.ok and result.leaves == 12
    ledger.close()


@pytest.mark.parametrize("column,value", [("response", "'a quieter answer'"), ("prompt", "'another'"),
                                          ("seed", "99"), ("prompt_hash", "'0'")])
def test_edit_is_caught_through_the_tree(path: Path, column: str, value: str) -> None:
    tamper(path, f"UPDATE generations SET {column} = {value} WHERE id = 5")
    result = check(path)
    assert not result.ok and result.bad_id == 5 and "edited" in result.problem


def test_rechained_edit_passes_the_chain_but_not_the_tree(path: Path) -> None:
    """Someone rewrites row 4 and recomputes every later chain hash: the chain verifies, the tree does not."""
    conn = sqlite3.connect(path)
    names = [d[1] for d in conn.execute("PRAGMA table_info(generations)")]
    rows = [dict(zip(names, values)) for values in conn.execute("SELECT * FROM generations ORDER BY id")]
    rows[3]["response"] = "an answer nobody generated"
    prev = rows[2]["row_hash"]
    for row in rows[3:]:
        row["prev_hash"] = prev
        row["row_hash"] = prev = row_hash(row)
        conn.execute("UPDATE generations SET response = ?, prev_hash = ?, row_hash = ? WHERE id = ?",
                     (row["response"], row["prev_hash"], row["row_hash"], row["id"]))
    conn.execute("UPDATE ledger_head SET last_hash = ?", (prev,))
    conn.commit()
    conn.close()
    ledger = Ledger.open(path)
    assert ledger.verify().ok
    ledger.close()
    result = check(path)
    assert not result.ok and result.bad_id == 4


def test_rebuilt_tree_is_caught_by_the_signed_checkpoint(path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    db = open_db(path)
    latest_checkpoint(db.conn, key)
    db.close()
    # Rewrite row 2 and rebuild the whole tree consistently: only the checkpoint's root disagrees.
    tamper(path, "UPDATE generations SET response = 'rewritten' WHERE id = 2")
    db = open_db(path)
    conn = db.conn
    salts = {idx: bytes(salt) for idx, salt in conn.execute(f"SELECT idx, salt FROM {HASHES_TABLE} WHERE salt IS NOT NULL")}
    conn.execute(f"DELETE FROM {HASHES_TABLE}")
    frontier = Frontier()
    names = [d[1] for d in conn.execute("PRAGMA table_info(generations)")]
    for values in conn.execute("SELECT * FROM generations ORDER BY id").fetchall():
        row = dict(zip(names, values))
        base = stored_hash_index(0, frontier.size)
        salt = salts[base]
        for j, h in enumerate(frontier.append(leaf_hash(leaf_data(row["id"], salt, row_hash(row),
                                                                   row["prompt_hash"], row["response_hash"])))):
            conn.execute(f"INSERT INTO {HASHES_TABLE} VALUES (?, ?, ?)", (base + j, h, None if j else salt))
    conn.commit()
    db.close()
    result = check(path)
    assert not result.ok and "checkpoint" in result.problem
    assert check(path, anchors={}).ok  # without the checkpoint nothing would show it


def test_deleted_middle_row_is_caught(path: Path) -> None:
    tamper(path, "DELETE FROM generations WHERE id = 3")
    result = check(path)
    assert not result.ok and result.bad_id == 3 and "removed" in result.problem


def test_truncated_end_is_caught(path: Path) -> None:
    tamper(path, f"DELETE FROM generations WHERE id > {ROWS - 2}")
    result = check(path)
    assert not result.ok and result.bad_id == ROWS - 1 and "removed from the end" in result.problem


def test_inserted_row_is_caught(path: Path) -> None:
    conn = sqlite3.connect(path)
    for rid in range(ROWS, 3, -1):
        conn.execute("UPDATE generations SET id = ? WHERE id = ?", (rid + 1, rid))
    conn.execute("INSERT INTO generations (id, uuid, source, status, prompt, response) "
                 "VALUES (4, 'forged', 'cli', 'ok', 'p', 'r')")
    conn.commit()
    conn.close()
    result = check(path)
    assert not result.ok and result.bad_id == 4


def test_reordered_rows_are_caught(path: Path) -> None:
    tamper(path, "UPDATE generations SET id = -1 WHERE id = 2", "UPDATE generations SET id = 2 WHERE id = 3",
           "UPDATE generations SET id = 3 WHERE id = -1")
    result = check(path)
    assert not result.ok and result.bad_id == 2


def test_row_added_outside_stillroom_has_no_leaf(path: Path) -> None:
    tamper(path, f"INSERT INTO generations (id, uuid, source, status) VALUES ({ROWS + 1}, 'x', 'cli', 'ok')")
    result = check(path)
    assert not result.ok and result.bad_id == ROWS + 1 and "no leaf" in result.problem


def test_proof_checkpoint_and_note_refused_when_altered(path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    db = open_db(path)
    verifier = log_verifier(db.conn, key)
    text = prove_row_text(db.conn, 6, key)
    db.close()
    fields, head = check_proof(text, verifier)
    assert fields.generation_id == 6 and head.size == ROWS
    lines = text.split("\n")

    def altered(i: int, new: str) -> str:
        return "\n".join(lines[:i] + [new] + lines[i + 1:])

    extra = base64.b64decode(lines[1][6:]).replace(b"id 6\n", b"id 7\n")
    with pytest.raises(ProofError, match="index 5 is not the leaf of row 7"):
        check_proof(altered(1, "extra " + base64.b64encode(extra).decode()), verifier)
    response_changed = base64.b64decode(lines[1][6:])
    response_changed = response_changed[:-3] + (b"0" if response_changed[-3:-2] != b"0" else b"1") + b"f\n"
    with pytest.raises(ProofError, match="does not lead to the checkpoint's root"):
        check_proof(altered(1, "extra " + base64.b64encode(response_changed).decode()), verifier)
    with pytest.raises(ProofError, match="does not lead"):
        check_proof(altered(3, base64.b64encode(b"\x07" * 32).decode()), verifier)
    with pytest.raises(ProofError, match="hash 1 is not a 32-byte hash"):
        check_proof(altered(3, base64.b64encode(b"\x07" * 31).decode()), verifier)
    with pytest.raises(ProofError, match="checkpoint: .*altered"):
        check_proof(text.replace(f"\n{ROWS}\n", f"\n{ROWS + 1}\n"), verifier)
    with pytest.raises(ProofError, match="no signature by the key"):
        check_proof(text, log_verifier(open_db(path).conn, Ed25519PrivateKey.generate()))
    with pytest.raises(ProofError, match="longer than"):
        check_proof(text + "x" * 40_000, verifier)
    with pytest.raises(ProofError, match="more than"):
        check_proof(altered(3, "\n".join([lines[3]] * 200)), verifier)
    with pytest.raises(LeafDataError):
        parse_leaf_data(b"stillroom-leaf/v1\nid 01\n")


def test_proof_from_another_tree_fails(path: Path, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    other = tmp_path / "other.db"
    ledger = Ledger.open(other)
    ledger.append_many([record(i) for i in range(1, ROWS + 1)])
    ours, theirs = open_db(path), ledger.db
    their_origin = theirs.conn.execute("SELECT origin FROM merkle_log").fetchone()[0]
    ours.conn.execute("UPDATE merkle_log SET origin = ?", (their_origin,))
    ours.conn.commit()
    their_proof = prove_row_text(theirs.conn, 4, key)
    our_head = latest_checkpoint(ours.conn, key)
    head, _, _ = their_proof.partition("\n\n")
    with pytest.raises(ProofError, match="does not lead to the checkpoint's root"):
        check_proof(head + "\n\n" + our_head, log_verifier(ours.conn, key))
    ours.close()
    ledger.close()


def test_consistency_between_checkpoints_and_a_fork_refused(path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    ledger = Ledger.open(path)
    conn = ledger.db.conn
    verifier = log_verifier(conn, key)
    old = open_checkpoint(latest_checkpoint(conn, key), verifier)
    ledger.append_many([record(i) for i in range(ROWS + 1, 30)])
    new = open_checkpoint(latest_checkpoint(conn, key), verifier)
    proof = consistency_text(conn, old.size)
    check_consistency_text(proof, old, new)
    forked = type(old)(old.origin, old.size, b"\x05" * 32)
    with pytest.raises(ProofError, match="old root is not the checkpoint's"):
        check_consistency_text(proof, forked, new)
    lines = proof.splitlines()
    lines[1] = f"old {old.size} {base64.b64encode(forked.root).decode()}"
    with pytest.raises(ProofError, match="does not extend"):
        check_consistency_text("\n".join(lines) + "\n", forked, new)
    ledger.close()


def test_signed_note_and_verifier_key_rules() -> None:
    key = Ed25519PrivateKey.generate()
    signed = sign_note("example.org/log\n1\n" + base64.b64encode(b"\x00" * 32).decode() + "\n", "example.org/log", key)
    with pytest.raises(NoteError, match="blank line"):
        sign_note("a\n\nb\n", "n", key)
    with pytest.raises(NoteError, match="key name"):
        sign_note("a\n", "has space", key)
    with pytest.raises(NoteError, match="id does not match"):
        parse_verifier_key("other+00000000+" + base64.b64encode(b"\x01" + b"\x00" * 32).decode())
    with pytest.raises(NoteError, match="form name"):
        parse_verifier_key("just-a-name")
    assert "— example.org/log " in signed


def test_verifier_key_whose_base64_holds_a_plus_round_trips() -> None:
    from app.core.store.note import verifier_for

    for _ in range(200):
        verifier = verifier_for("example.org/log", Ed25519PrivateKey.generate())
        if "+" in verifier.text().split("+", 2)[2]:
            break
    else:
        pytest.fail("no key with '+' in its base64 in 200 tries")
    assert parse_verifier_key(verifier.text()).key_id == verifier.key_id
