"""Inclusion proofs inside a provenance statement, checked without the publisher's ledger.

The publisher's side (`build_inclusion`) signs the ledger's latest checkpoint and writes, for every
exactly traced dataset row, the fields of its ledger row's leaf that the dataset cannot give (salt,
chain hash, and the prompt's content hash when the dataset's prompt differs), plus one multiproof
(app.core.store.multiproof) for all those leaves at once, in the binary form of
inclusion_codec. It also carries consistency proofs from the ledger's recent earlier checkpoints,
for verifiers who remember one of them. Salts are disclosed for exactly traced rows only.

The verifier's side (`check_inclusion`) opens the checkpoint with the statement's own key, rebuilds
each traced row's leaf from the dataset row's prompt and response and the disclosed fields, and
checks that together they give the checkpoint's root. A changed dataset row is named by its row
number (the proof carries a few check bytes of each response's content hash); a proof that no
longer leads to the root is reported as altered proof material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from app.core.provenance import inclusion_codec as codec
from app.core.provenance.dataset import DatasetRow, DatasetShape, iter_rows
from app.core.safetext import quote
from app.core.store.checkpoint import (
    CHECKPOINTS_TABLE,
    Checkpoint,
    ProofError,
    consistency_text,
    latest_checkpoint,
    open_checkpoint,
)
from app.core.store.commitment import leaf_data
from app.core.store.merkle import leaf_hash, stored_hash_index
from app.core.store.multiproof import prove_leaves, root_from_leaves
from app.core.store.note import MAX_NOTE_BYTES, NoteError, verifier_for
from app.core.store.tree import hash_reader
from app.core.textnorm import normalize

FORMAT = "stillroom.dev/batch-inclusion@v1"
CARRIED_CONSISTENCY = 8  # consistency proofs from this many earlier checkpoints
FETCH_CHUNK = 900
MAX_PROOF_CHARS = 48 * 1024 * 1024


def _content_hash(text: str) -> bytes:
    """textnorm.content_hash, as bytes."""
    return hashlib.sha256(normalize(text).encode("utf-8")).digest()


def note_body(signed: str) -> str:
    """The text of a signed note (before its blank line), unchecked."""
    return signed[:signed.find("\n\n") + 1] if "\n\n" in signed else ""


# -- the publisher's side ---------------------------------------------------------------------


def _leaf_rows(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, tuple[bytes, str, str | None, str | None]]:
    found: dict[int, tuple[bytes, str, str | None, str | None]] = {}
    for start in range(0, len(ids), FETCH_CHUNK):
        chunk = list(ids[start:start + FETCH_CHUNK])
        marks = ", ".join("?" for _ in chunk)
        rows = {r[0]: r[1:] for r in conn.execute(
            f"SELECT id, row_hash, prompt_hash, response_hash FROM generations WHERE id IN ({marks})", chunk)}
        salts = dict(conn.execute(f"SELECT idx, salt FROM merkle_hashes WHERE idx IN ({marks})",
                                  [stored_hash_index(0, g - 1) for g in chunk]))
        for gid in chunk:
            salt = salts.get(stored_hash_index(0, gid - 1))
            if gid in rows and salt is not None:
                found[gid] = (bytes(salt), *rows[gid])
    return found


def _prompt_hashes(dataset_path: Path, shape: DatasetShape, wanted: set[int]) -> dict[int, tuple[bytes, bytes]]:
    """Dataset row index -> (prompt content hash, response content hash) for the rows wanted."""
    out: dict[int, tuple[bytes, bytes]] = {}
    for row in iter_rows(dataset_path, shape):
        if isinstance(row, DatasetRow) and row.index in wanted:
            out[row.index] = (_content_hash(row.prompt), _content_hash(row.response))
    return out


def build_inclusion(conn: sqlite3.Connection, key: Ed25519PrivateKey, exact: Sequence[tuple[int, int]],
                    dataset_path: Path, shape: DatasetShape) -> dict[str, Any]:
    """The statement's `inclusion` section for the exactly traced (dataset row index, ledger row id)
    pairs. Signs (and keeps) a new checkpoint when the tree grew; call outside a transaction."""
    signed = latest_checkpoint(conn, key)
    lines = note_body(signed).split("\n")
    size = int(lines[1])
    pairs = sorted((gid, index) for index, gid in exact if 1 <= gid <= size)
    ids = sorted({gid for gid, _ in pairs})
    leaves = _leaf_rows(conn, ids)
    hashes = _prompt_hashes(dataset_path, shape, {index for _, index in pairs})
    entries: list[codec.Entry] = []
    for gid, index in pairs:
        salt, row_hash, prompt_hash, response_hash = leaves[gid]
        row_prompt, row_response = hashes.get(index, (b"", b""))
        if prompt_hash is None:
            mode, given = codec.PROMPT_NONE, None
        elif bytes.fromhex(prompt_hash) == row_prompt:
            mode, given = codec.PROMPT_FROM_ROW, None
        else:
            mode, given = codec.PROMPT_GIVEN, bytes.fromhex(prompt_hash)
        response = bytes.fromhex(response_hash) if response_hash else row_response
        entries.append(codec.Entry(gid, index, salt, bytes.fromhex(row_hash), mode, given,
                                   response[:codec.CHECK_BYTES], row_prompt[:codec.PROMPT_CHECK_BYTES]
                                   if mode == codec.PROMPT_FROM_ROW else None))
    nodes = prove_leaves(size, [gid - 1 for gid in ids], hash_reader(conn)) if ids else []
    earlier = conn.execute(f"SELECT size, note FROM {CHECKPOINTS_TABLE} WHERE size < ? AND size > 0 "
                           "ORDER BY size DESC LIMIT ?", (size, CARRIED_CONSISTENCY)).fetchall()
    return {
        "format": FORMAT,
        "checkpoint": signed,
        "rows": len(pairs),
        "ledger_rows": len(ids),
        "proof": base64.b64encode(codec.encode(entries, nodes)).decode("ascii"),
        "encoding": "zlib-compressed binary, see the Stillroom source app/core/provenance/inclusion_codec.py",
        "consistency": [{"checkpoint": note, "proof": consistency_text(conn, old, size)} for old, note in earlier],
    }


# -- the verifier's side ----------------------------------------------------------------------


@dataclass
class InclusionOutcome:
    """What check_inclusion found: (name, ok, detail) checks in order, and the opened checkpoint."""

    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    signed: str | None = None
    proven: int = 0

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.checks)


def open_section_checkpoint(section: Any, public_key: Ed25519PublicKey) -> tuple[Checkpoint, str]:
    """The section's checkpoint, its signature checked with `public_key`; ProofError naming what failed."""
    signed = section.get("checkpoint") if isinstance(section, dict) else None
    if not isinstance(signed, str) or not signed:
        raise ProofError("checkpoint: the statement carries none")
    if len(signed) > MAX_NOTE_BYTES:
        raise ProofError(f"checkpoint: longer than {MAX_NOTE_BYTES} characters")
    origin = note_body(signed).split("\n", 1)[0]
    try:
        verifier = verifier_for(origin, public_key)
    except NoteError as exc:
        raise ProofError(f"checkpoint: its origin line is not a log name ({exc})") from exc
    return open_checkpoint(signed, verifier), signed


def _expected_count(predicate: dict[str, Any]) -> int | None:
    counts = (predicate.get("matching") or {}).get("counts") if isinstance(predicate.get("matching"), dict) else None
    value = counts.get("traced-exact") if isinstance(counts, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def check_inclusion(section: Any, public_key: Ed25519PublicKey, dataset_path: Path, shape: DatasetShape,
                    predicate: dict[str, Any]) -> InclusionOutcome:
    """Check the statement's `inclusion` section against the dataset; never raises for bad input."""
    outcome = InclusionOutcome()
    try:
        checkpoint, signed = open_section_checkpoint(section, public_key)
    except ProofError as exc:
        outcome.checks.append(("checkpoint", False, f"{exc}"))
        return outcome
    outcome.checkpoint, outcome.signed = checkpoint, signed
    outcome.checks.append(("checkpoint", True, f"signed by the statement's key: log {quote(checkpoint.origin, 80)}, "
                           f"{checkpoint.size} rows, root {base64.b64encode(checkpoint.root).decode()}"))
    expected = _expected_count(predicate)
    text = section.get("proof")
    if not isinstance(text, str) or len(text) > MAX_PROOF_CHARS:
        outcome.checks.append(("inclusion proof", False, "the proof material is missing or too large"))
        return outcome
    try:
        entries, nodes = codec.decode(base64.b64decode(text, validate=True),
                                      max_entries=expected if expected is not None else codec.MAX_ENTRIES)
    except (binascii.Error, ValueError) as exc:
        outcome.checks.append(("inclusion proof", False, f"the proof material is damaged: {exc}"))
        return outcome
    if expected is not None and len(entries) != expected:
        outcome.checks.append(("inclusion proof", False, f"the statement counts {expected} exactly traced rows but "
                               f"proves {len(entries)}: rows were left out of the proof"))
        return outcome
    if any(e.generation_id > checkpoint.size for e in entries):
        outcome.checks.append(("inclusion proof", False, "the proof names a ledger row outside the checkpoint's "
                               f"tree of {checkpoint.size} rows"))
        return outcome
    problem = _check_rows(entries, nodes, checkpoint, dataset_path, shape)
    if problem:
        outcome.checks.append(problem)
        return outcome
    outcome.proven = len(entries)
    outcome.checks.append(("inclusion", True, f"all {len(entries)} exactly traced dataset rows are in the "
                           f"publisher's log at checkpoint {checkpoint.size}: each row's prompt and response, "
                           "with its disclosed leaf fields, rebuilds a leaf of the signed tree"))
    return outcome


def _check_rows(entries: list[codec.Entry], nodes: list[bytes], checkpoint: Checkpoint, dataset_path: Path,
                shape: DatasetShape) -> tuple[str, bool, str] | None:
    by_row = {e.row_index: e for e in entries}
    content: dict[int, tuple[bytes, bytes]] = {}
    try:
        for row in iter_rows(dataset_path, shape):
            if isinstance(row, DatasetRow) and row.index in by_row:
                content[row.index] = (_content_hash(row.prompt), _content_hash(row.response))
    except (OSError, ValueError) as exc:
        return ("inclusion", False, f"the dataset cannot be read: {quote(str(exc), 200)}")
    leaves: dict[int, bytes] = {}
    for entry in sorted(entries, key=lambda e: e.row_index):
        number = entry.row_index + 1
        if entry.row_index not in content:
            return ("inclusion", False, f"dataset row {number} (traced to ledger row {entry.generation_id}) is "
                    "missing or malformed in the dataset")
        prompt, response = content[entry.row_index]
        if response[:codec.CHECK_BYTES] != entry.response_check:
            return ("inclusion", False, f"dataset row {number}: its response is not the one ledger row "
                    f"{entry.generation_id} generated (the dataset row was changed)")
        if entry.prompt_mode == codec.PROMPT_FROM_ROW and prompt[:codec.PROMPT_CHECK_BYTES] != entry.prompt_check:
            return ("inclusion", False, f"dataset row {number}: its prompt is not the one ledger row "
                    f"{entry.generation_id} was given (the dataset row was changed)")
        prompt_hex = {codec.PROMPT_FROM_ROW: prompt.hex(), codec.PROMPT_NONE: None,
                      codec.PROMPT_GIVEN: (entry.prompt_hash or b"").hex()}[entry.prompt_mode]
        leaf = leaf_hash(leaf_data(entry.generation_id, entry.salt, entry.row_hash.hex(), prompt_hex, response.hex()))
        if leaves.setdefault(entry.generation_id, leaf) != leaf:
            return ("inclusion", False, f"dataset row {number} and another row traced to ledger row "
                    f"{entry.generation_id} differ (the dataset row was changed)")
    ids = sorted(leaves)
    if not ids:
        return None if not nodes else ("inclusion proof", False, "the proof holds tree nodes but no rows")
    root = root_from_leaves(checkpoint.size, [i - 1 for i in ids], [leaves[i] for i in ids], nodes)
    if root != checkpoint.root:
        return ("inclusion proof", False, f"the proof material does not lead to the checkpoint's root: a salt, a "
                f"row hash or a tree node in the proof was altered, or the proof is from another tree "
                f"({len(ids)} ledger rows checked together)")
    return None


def shape_from_predicate(predicate: dict[str, Any]) -> DatasetShape | None:
    """The dataset shape the statement recorded, to read the dataset's rows as the publisher did."""
    data = predicate.get("dataset")
    if not isinstance(data, dict):
        return None
    try:
        return DatasetShape(str(data["format"]), str(data["shape"]), {str(k): str(v) for k, v in data["fields"].items()},
                            tuple(str(c) for c in data.get("columns") or ()),
                            {str(k): str(v) for k, v in (data.get("column_types") or {}).items()},
                            str(data.get("container") or ""), str(data.get("delimiter") or ","))
    except (KeyError, AttributeError, TypeError):
        return None


def inclusion_for(report: Any, ledger_path: Path | str, key: Ed25519PrivateKey) -> dict[str, Any]:
    """build_inclusion for a match report, on its own connection to the ledger."""
    from app.core.store import open_db
    from app.core.store.db import translate_errors

    db = open_db(Path(ledger_path))
    try:
        with translate_errors(ledger_path):
            return build_inclusion(db.conn, key, list(report.exact), Path(report.dataset_path), report.shape)
    finally:
        db.close()
