"""Signed checkpoints of the ledger's Merkle tree, and the text forms of its proofs.

A checkpoint (c2sp.org/tlog-checkpoint) is the note text `origin\\nsize\\nbase64(root)\\n`, signed
as a C2SP signed note with the publisher's provenance key under the key name = the origin. The
provenance key is used, not a key of its own: a stranger who checks a statement already holds
(and may have pinned) that key, and a second key would need its own publishing and pinning. The
two uses cannot be confused: DSSE signs "DSSEv1 ..." byte strings, a note signs text that starts
with the origin line.

Checkpoints made are kept in the ledger (`merkle_checkpoints`), one per tree size, so the same
size is never signed with two roots. An inclusion proof is printed in c2sp.org/tlog-proof@v1 form,
whose `extra` line carries the row's leaf data (app.core.store.commitment).
"""

from __future__ import annotations

import base64
import binascii
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core.errors import LedgerError, StillroomError
from app.core.store.commitment import LeafDataError, LeafFields, parse_leaf_data
from app.core.store.merkle import HASH_SIZE, MAX_PROOF_HASHES, MAX_TREE_SIZE, check_consistency, check_inclusion
from app.core.store.note import NoteError, VerifierKey, open_note, sign_note, verifier_for
from app.core.store.tree import origin, prove_consistency, prove_row, root, tree_size

CHECKPOINTS_TABLE = "merkle_checkpoints"
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
CONSISTENCY_HEADER = "stillroom.dev/tlog-consistency@v1"
MAX_PROOF_BYTES = 32 * 1024


class ProofError(StillroomError):
    """A checkpoint or proof that is malformed or does not verify; the message names what failed."""


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's origin, its size and its root hash."""

    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        """The checkpoint's note text."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """Read a checkpoint's note text (extension lines after the root are allowed and ignored)."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise ProofError("the checkpoint must have an origin, a size and a root hash line")
    name, size_text, root_text = lines[0], lines[1], lines[2]
    if not name:
        raise ProofError("the checkpoint's origin line is empty")
    if not size_text.isdigit() or (size_text.startswith("0") and size_text != "0") or len(size_text) > 19:
        raise ProofError("the checkpoint's tree size is not a decimal number")
    size = int(size_text)
    if size > MAX_TREE_SIZE:
        raise ProofError("the checkpoint's tree size is too large")
    try:
        value = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProofError("the checkpoint's root hash is not valid base64") from exc
    if len(value) != HASH_SIZE:
        raise ProofError("the checkpoint's root hash is not 32 bytes")
    return Checkpoint(name, size, value)


def open_checkpoint(signed: str, verifier: VerifierKey) -> Checkpoint:
    """A checkpoint from a signed note, its signature checked; ProofError naming what failed."""
    try:
        text = open_note(signed, verifier)
    except NoteError as exc:
        raise ProofError(f"checkpoint: {exc}") from exc
    checkpoint = parse_checkpoint(text)
    if checkpoint.origin != verifier.name:
        raise ProofError(f"checkpoint: its origin {checkpoint.origin[:80]!r} is not the key's log {verifier.name!r}")
    return checkpoint


# -- the publisher's side --------------------------------------------------------------------


def create_table(conn: sqlite3.Connection) -> None:
    """The table of checkpoints made (used by the migration)."""
    conn.execute(f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS_TABLE} (size INTEGER PRIMARY KEY, root BLOB NOT NULL, "
                 "note TEXT NOT NULL, created_at TEXT NOT NULL)")


def log_verifier(conn: sqlite3.Connection, key: Ed25519PrivateKey) -> VerifierKey:
    """The verifier key of this ledger's checkpoints."""
    return verifier_for(origin(conn), key)


def latest_checkpoint(conn: sqlite3.Connection, key: Ed25519PrivateKey) -> str:
    """The newest signed checkpoint, made (and kept) first when the tree grew since the last one.

    Call inside no open transaction: it commits the new checkpoint."""
    size = tree_size(conn)
    last = conn.execute(f"SELECT size, note FROM {CHECKPOINTS_TABLE} ORDER BY size DESC LIMIT 1").fetchone()
    if last and last[0] == size:
        return str(last[1])
    if last and last[0] > size:
        raise LedgerError(f"a checkpoint was signed at {last[0]} rows but the tree has {size}; "
                          "run `stillroom log verify`")
    head = Checkpoint(origin(conn), size, root(conn, size))
    signed = sign_note(head.text(), head.origin, key)
    with conn:
        conn.execute(f"INSERT INTO {CHECKPOINTS_TABLE} (size, root, note, created_at) VALUES (?, ?, ?, ?)",
                     (size, head.root, signed, datetime.now(timezone.utc).isoformat(timespec="seconds")))
    return signed


def checkpoint_at(conn: sqlite3.Connection, size: int) -> str | None:
    """The signed checkpoint made at `size`, if one was."""
    found = conn.execute(f"SELECT note FROM {CHECKPOINTS_TABLE} WHERE size = ?", (size,)).fetchone()
    return str(found[0]) if found else None


def signed_roots(conn: sqlite3.Connection) -> dict[int, bytes]:
    """Tree size -> root of every checkpoint made, for checking the tree against them."""
    try:
        return {int(size): bytes(value) for size, value in conn.execute(f"SELECT size, root FROM {CHECKPOINTS_TABLE}")}
    except sqlite3.OperationalError:
        return {}


def format_proof(index: int, hashes: list[bytes], signed_checkpoint: str, extra: bytes | None = None) -> str:
    """A c2sp.org/tlog-proof@v1 text."""
    lines = [PROOF_HEADER]
    if extra is not None:
        lines.append(f"extra {base64.b64encode(extra).decode()}")
    lines.append(f"index {index}")
    lines.extend(base64.b64encode(h).decode() for h in hashes)
    return "\n".join(lines) + "\n\n" + signed_checkpoint


def prove_row_text(conn: sqlite3.Connection, generation_id: int, key: Ed25519PrivateKey) -> str:
    """Row `generation_id`'s inclusion proof against the latest checkpoint, in tlog-proof form,
    its leaf data (with the row's salt) in the `extra` line."""
    signed = latest_checkpoint(conn, key)
    size = parse_checkpoint(signed[:signed.rfind("\n\n") + 1]).size
    if not 1 <= generation_id <= size:
        raise LedgerError(f"row {generation_id} is not in the ledger's tree of {size} rows")
    data, hashes = prove_row(conn, generation_id, size)
    return format_proof(generation_id - 1, hashes, signed, data)


def consistency_text(conn: sqlite3.Connection, old_size: int, new_size: int | None = None) -> str:
    """A consistency proof between two tree sizes, with both roots: a header line, `old SIZE ROOT`,
    `new SIZE ROOT`, then the proof hashes one a line (base64)."""
    current = tree_size(conn)
    new_size = current if new_size is None else new_size
    if not 1 <= old_size <= new_size <= current:
        raise LedgerError(f"sizes must satisfy 1 <= old ({old_size}) <= new ({new_size}) <= the tree's {current}")
    hashes = prove_consistency(conn, old_size, new_size)
    lines = [CONSISTENCY_HEADER,
             f"old {old_size} {base64.b64encode(root(conn, old_size)).decode()}",
             f"new {new_size} {base64.b64encode(root(conn, new_size)).decode()}"]
    lines.extend(base64.b64encode(h).decode() for h in hashes)
    return "\n".join(lines) + "\n"


# -- the verifier's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedProof:
    """The parts of a tlog-proof text (not yet checked)."""

    extra: bytes | None
    index: int
    hashes: list[bytes]
    signed_checkpoint: str


def _b64_hash(line: str, what: str) -> bytes:
    try:
        value = base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProofError(f"{what} is not valid base64") from exc
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is not a 32-byte hash")
    return value


def parse_proof(text: str) -> ParsedProof:
    """Read a tlog-proof text; ProofError naming the part that is malformed."""
    if len(text.encode("utf-8", "replace")) > MAX_PROOF_BYTES:
        raise ProofError(f"proof: longer than {MAX_PROOF_BYTES} bytes")
    head, sep, signed = text.partition("\n\n")
    if not sep:
        raise ProofError("proof: no blank line before its checkpoint")
    lines = head.split("\n")
    if lines[0] != PROOF_HEADER:
        raise ProofError(f"proof: does not start with {PROOF_HEADER}")
    lines = lines[1:]
    extra = None
    if lines and lines[0].startswith("extra "):
        try:
            extra = base64.b64decode(lines[0][6:], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ProofError("proof: its extra line is not valid base64") from exc
        lines = lines[1:]
    if not lines or not lines[0].startswith("index "):
        raise ProofError("proof: no index line")
    index_text = lines[0][6:]
    if not index_text.isdigit() or (index_text.startswith("0") and index_text != "0") or len(index_text) > 19:
        raise ProofError("proof: its index is not a decimal number")
    if len(lines) - 1 > MAX_PROOF_HASHES:
        raise ProofError(f"proof: more than {MAX_PROOF_HASHES} hashes")
    hashes = [_b64_hash(line, f"proof: hash {i + 1}") for i, line in enumerate(lines[1:])]
    return ParsedProof(extra, int(index_text), hashes, signed)


def check_proof(text: str, verifier: VerifierKey) -> tuple[LeafFields, Checkpoint]:
    """Check a row's tlog-proof: the checkpoint's signature, then that the leaf rebuilt from the
    `extra` leaf data is at the index in the checkpointed tree. Returns the leaf's fields (whose
    content hashes the caller compares with the row it holds) and the checkpoint."""
    parsed = parse_proof(text)
    checkpoint = open_checkpoint(parsed.signed_checkpoint, verifier)
    if parsed.extra is None:
        raise ProofError("proof: no extra line with the row's leaf data")
    try:
        fields = parse_leaf_data(parsed.extra)
    except LeafDataError as exc:
        raise ProofError(f"proof: {exc}") from exc
    if fields.generation_id != parsed.index + 1:
        raise ProofError(f"proof: its index {parsed.index} is not the leaf of row {fields.generation_id}")
    if parsed.index >= checkpoint.size:
        raise ProofError(f"proof: index {parsed.index} is outside the checkpoint's tree of {checkpoint.size}")
    if not check_inclusion(parsed.hashes, checkpoint.size, checkpoint.root, parsed.index, fields.leaf_hash()):
        raise ProofError(f"proof: the inclusion proof of row {fields.generation_id} does not lead to the "
                         "checkpoint's root (the leaf data, a hash or the checkpoint was altered)")
    return fields, checkpoint


def check_consistency_text(text: str, old: Checkpoint, new: Checkpoint) -> None:
    """Check a consistency proof text between two checkpoints already opened; ProofError if it fails."""
    if len(text) > MAX_PROOF_BYTES:
        raise ProofError(f"consistency proof: longer than {MAX_PROOF_BYTES} bytes")
    lines = text.rstrip("\n").split("\n")
    if len(lines) < 3 or lines[0] != CONSISTENCY_HEADER:
        raise ProofError(f"consistency proof: does not start with {CONSISTENCY_HEADER}")
    if len(lines) - 3 > MAX_PROOF_HASHES:
        raise ProofError(f"consistency proof: more than {MAX_PROOF_HASHES} hashes")
    for line, head, label in ((lines[1], old, "old"), (lines[2], new, "new")):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != label or parts[1] != str(head.size):
            raise ProofError(f"consistency proof: its {label} line is not '{label} {head.size} ROOT'")
        if _b64_hash(parts[2], f"consistency proof: the {label} root") != head.root:
            raise ProofError(f"consistency proof: its {label} root is not the checkpoint's")
    hashes = [_b64_hash(line, f"consistency proof: hash {i + 1}") for i, line in enumerate(lines[3:])]
    if not check_consistency(hashes, new.size, new.root, old.size, old.root):
        raise ProofError(f"consistency proof: the tree of {new.size} does not extend the tree of {old.size} "
                         "(a fork, or an altered proof)")


def tree_head(conn: sqlite3.Connection) -> tuple[int, str | None]:
    """The tree's size and the newest signed checkpoint made (None before the first), for showing."""
    size = tree_size(conn)
    try:
        last = conn.execute(f"SELECT note FROM {CHECKPOINTS_TABLE} ORDER BY size DESC LIMIT 1").fetchone()
    except sqlite3.OperationalError:
        last = None
    return size, (str(last[0]) if last else None)
