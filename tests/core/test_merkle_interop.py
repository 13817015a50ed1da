"""Independent implementations agree with our tree, checkpoints and proofs: Go's own
golang.org/x/mod/sumdb/note and sumdb/tlog (a small program in tlog_witness/), and pymerkle 7."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core.store import Ledger
from app.core.store.checkpoint import consistency_text, latest_checkpoint, log_verifier, prove_row_text
from app.core.store.merkle import Frontier, leaf_hash
from app.core.store.tree import HASHES_TABLE
from tests.core.records import record

WITNESS_SOURCE = Path(__file__).parent / "tlog_witness" / "main.go"
GO_PATH = "/usr/share/gocode"  # where Debian's golang-golang-x-mod-dev puts golang.org/x/mod
ROOT_SIZES = 1000


@pytest.fixture(scope="module")
def witness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go checker, built once (GOPATH mode, offline)."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("go is not installed: apt-get install golang-go golang-golang-x-mod-dev to run the Go check")
    gopath = os.environ.get("GOPATH", GO_PATH)
    if not (Path(gopath) / "src" / "golang.org" / "x" / "mod" / "sumdb" / "tlog").is_dir():
        pytest.skip(f"golang.org/x/mod is not in GOPATH {gopath}: apt-get install golang-golang-x-mod-dev")
    folder = tmp_path_factory.mktemp("go")
    binary = folder / "tlog_witness"
    env = os.environ | {"GO111MODULE": "off", "GOPATH": gopath, "GOCACHE": str(folder / "cache"),
                        "GOFLAGS": ""}
    subprocess.run([go, "build", "-o", str(binary), str(WITNESS_SOURCE)], check=True, env=env, cwd=folder,
                   timeout=300, capture_output=True)
    return binary


def run_witness(binary: Path, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"Go rejected it: {done.stdout}{done.stderr}")
    return done


def test_roots_and_stored_hashes_equal_go_and_pymerkle(witness: Path, tmp_path: Path) -> None:
    from pymerkle import InmemoryTree

    entries = [f"entry {i}".encode() * (i % 7 + 1) for i in range(ROOT_SIZES)]
    leaves_file = tmp_path / "leaves"
    leaves_file.write_text("".join(base64.b64encode(e).decode() + "\n" for e in entries))
    out = run_witness(witness, "roots", leaves_file).stdout.splitlines()
    go_roots = {int(n): base64.b64decode(h) for kind, n, h in (line.split() for line in out) if kind == "root"}
    go_stored = [base64.b64decode(h) for kind, _, h in (line.split() for line in out) if kind == "stored"]

    frontier, stored = Frontier(), []
    oracle = InmemoryTree(algorithm="sha256")
    for size, entry in enumerate(entries, start=1):
        stored.extend(frontier.append(leaf_hash(entry)))
        oracle.append_entry(entry)
        assert frontier.root() == go_roots[size] == oracle.get_root(size), f"root differs at size {size}"
    assert len(go_roots) == ROOT_SIZES
    assert stored == go_stored  # the same stored-hash layout as Go's tlog.StoredHashIndex


def test_go_verifies_checkpoints_inclusion_and_consistency_from_a_ledger(witness: Path, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    ledger = Ledger.open(tmp_path / "ledger.db")
    ledger.append_many([record(i) for i in range(1, 14)])
    conn = ledger.db.conn
    vkey = tmp_path / "vkey"
    vkey.write_text(log_verifier(conn, key).text())
    old = tmp_path / "old.note"
    old.write_text(latest_checkpoint(conn, key))
    proofs = {}
    for rid in range(1, 14):
        proofs[rid] = tmp_path / f"row{rid}.tlog-proof"
        proofs[rid].write_text(prove_row_text(conn, rid, key))
    ledger.append_many([record(i) for i in range(14, 38)])
    new = tmp_path / "new.note"
    new.write_text(latest_checkpoint(conn, key))
    late = tmp_path / "row30.tlog-proof"
    late.write_text(prove_row_text(conn, 30, key))
    consistency = tmp_path / "consistency"
    consistency.write_text(consistency_text(conn, 13))
    stored_count = conn.execute(f"SELECT count(*) FROM {HASHES_TABLE}").fetchone()[0]
    ledger.close()

    origin, size, _ = run_witness(witness, "checkpoint", vkey, old).stdout.split()
    assert origin.startswith("stillroom.dev/ledger/") and size == "13"
    assert run_witness(witness, "checkpoint", vkey, new).stdout.split()[1] == "37"
    for path in [*proofs.values(), late]:
        assert run_witness(witness, "inclusion", vkey, path).stdout.startswith("ok inclusion")
    assert run_witness(witness, "consistency", vkey, old, new, consistency).stdout == "ok consistency 13 37\n"
    assert stored_count == 2 * 37 - bin(37).count("1")

    # Go rejects what we would reject: a changed byte of the leaf data, a proof hash, the checkpoint.
    text = proofs[5].read_text()
    extra_line = text.splitlines()[1]
    changed = extra_line[:-6] + ("A" if extra_line[-6] != "A" else "B") + extra_line[-5:]
    (tmp_path / "bad-extra").write_text(text.replace(extra_line, changed))
    assert run_witness(witness, "inclusion", vkey, tmp_path / "bad-extra", check=False).stdout.startswith("FAIL")
    hash_line = text.splitlines()[3]
    (tmp_path / "bad-hash").write_text(text.replace(hash_line, base64.b64encode(b"\x01" * 32).decode()))
    assert run_witness(witness, "inclusion", vkey, tmp_path / "bad-hash", check=False).stdout.startswith("FAIL")
    (tmp_path / "bad-note").write_text(old.read_text().replace("\n13\n", "\n12\n"))
    assert "note" in run_witness(witness, "checkpoint", vkey, tmp_path / "bad-note", check=False).stdout
