"""Verify a provenance statement offline: signature, dataset digest, and (given the ledger) inclusion.

Checks, in order, each recorded with a sentence: the envelope's signature over its payload (with the
key the statement carries, or a pinned one); that the dataset's bytes hash to the subject digest;
and with a ledger: that the chain head the statement recorded is still there unchanged, that every
traced generation is in the ledger with the row hash the statement recorded, and that the chain
verifies. A failure's reason names what changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.cancel import NEVER, CancelToken
from app.core.errors import StillroomError
from app.core.hashing import sha256_file
from app.core.provenance.signing import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    PublicKey,
    SigningError,
    key_fingerprint,
    load_public_key,
    open_envelope,
    signature_valid,
)
from app.core.provenance.statement import decode_ids, split_prefixes, traced_digest
from app.core.store import Ledger, open_db
from app.core.store.chain import row_hash
from app.core.store.db import translate_errors
from app.core.store.schema import GENERATION_COLUMNS

FETCH_CHUNK = 500
_COLUMNS = ", ".join(GENERATION_COLUMNS)


@dataclass(frozen=True)
class Check:
    """One verification step: its name, whether it passed, and what was found."""

    name: str
    ok: bool
    detail: str


@dataclass
class VerifyResult:
    """The outcome: ok only if every check passed; reasons lists the failures in plain words."""

    checks: list[Check] = field(default_factory=list)
    keyid: str | None = None
    pinned: bool = False
    predicate: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True when there were checks and all of them passed."""
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def reasons(self) -> list[str]:
        """The failed checks' sentences."""
        return [check.detail for check in self.checks if not check.ok]

    def add(self, name: str, ok: bool, detail: str) -> bool:
        """Record a check; returns ok."""
        self.checks.append(Check(name, ok, detail))
        return ok


def _key_from(public_key: PublicKey | Path | str | None) -> PublicKey | None:
    if public_key is None or isinstance(public_key, PublicKey):
        return public_key
    if isinstance(public_key, str) and "BEGIN PUBLIC KEY" in public_key:
        return load_public_key(public_key)
    return load_public_key(Path(public_key))


def _check_signature(result: VerifyResult, envelope: Any, pinned: PublicKey | None) -> dict[str, Any] | None:
    """The statement when the envelope's signature verifies, else None (the failure recorded)."""
    try:
        opened = open_envelope(envelope)
    except SigningError as exc:
        result.add("signature", False, f"signature does not verify: {exc}")
        return None
    statement = opened.statement
    signer = (statement or {}).get("predicate", {}).get("signer", {}) if isinstance(statement, dict) else {}
    key = pinned
    if key is None:
        try:
            key = load_public_key(str(signer.get("public_key", ""))) if isinstance(signer, dict) else None
        except SigningError:
            key = None
    if key is None:
        result.add("signature", False, "signature does not verify: the statement was modified "
                   "(it no longer carries a readable public key; pass the publisher's key with --key)")
        return None
    result.keyid, result.pinned = key_fingerprint(key), pinned is not None
    keyids = {entry.get("keyid") for entry in opened.signatures}
    if result.keyid not in keyids:
        which = "the key given" if pinned is not None else "the key the statement carries"
        result.add("signature", False, f"signature does not verify: the envelope was signed by key "
                   f"{', '.join(sorted(str(k) for k in keyids)) or '(none)'}, not by {which} ({result.keyid})")
        return None
    if opened.payload_type != PAYLOAD_TYPE:
        result.add("signature", False, f"signature does not verify: unexpected payload type {opened.payload_type!r}")
        return None
    if not signature_valid(opened, key):
        result.add("signature", False, "signature does not verify: the statement was modified")
        return None
    if statement is None:
        result.add("signature", False, "the signed payload is not a JSON statement")
        return None
    trust = ("the pinned key" if pinned is not None else
             "the key the statement carries (not pinned: pass --key to require a key you trust)")
    result.add("signature", True, f"signature verifies with {trust}, fingerprint {result.keyid}")
    return statement


def _check_dataset(result: VerifyResult, statement: dict[str, Any], dataset_path: Path) -> None:
    subjects = statement.get("subject") or []
    expected = subjects[0].get("digest", {}).get("sha256") if subjects and isinstance(subjects[0], dict) else None
    if not expected:
        result.add("dataset", False, "the statement names no subject digest")
        return
    try:
        actual = sha256_file(dataset_path)
    except OSError as exc:
        result.add("dataset", False, f"{dataset_path}: cannot read the dataset ({exc.strerror or exc})")
        return
    if actual != expected:
        result.add("dataset", False, f"dataset sha256 differs from the statement's subject "
                   f"({actual} in {dataset_path.name}, {expected} in the statement)")
    else:
        result.add("dataset", True, f"dataset sha256 {actual} matches the statement's subject "
                   f"({subjects[0].get('name')})")


def _fetch(db: Any, ids: list[int]) -> dict[int, dict[str, Any]]:
    marks = ",".join("?" for _ in ids)
    rows = db.execute(f"SELECT {_COLUMNS} FROM generations WHERE id IN ({marks})", ids).fetchall()
    names = list(GENERATION_COLUMNS)
    return {values[0]: dict(zip(names, values)) for values in rows}


def _check_ledger(result: VerifyResult, predicate: dict[str, Any], ledger_path: Path, cancel: CancelToken) -> None:
    if not ledger_path.exists():
        result.add("ledger", False, f"{ledger_path}: no ledger database here")
        return
    recorded, traced = predicate.get("ledger") or {}, predicate.get("traced") or {}
    db = open_db(ledger_path, readonly=True)
    try:
        head_id, head_hash = recorded.get("head_id"), recorded.get("head_hash")
        with translate_errors(ledger_path):
            head_row = _fetch(db, [head_id]).get(head_id) if head_id else None
        if not head_id:
            result.add("chain head", True, "the ledger was empty when the statement was made")
        elif head_row is None:
            result.add("chain head", False, f"ledger row {head_id}, the chain head the statement recorded, is missing")
        elif row_hash(head_row) != head_hash or head_row["row_hash"] != head_hash:
            result.add("chain head", False, f"ledger row {head_id} differs from the chain head the statement recorded")
        else:
            result.add("chain head", True, f"the chain head the statement recorded (row {head_id}) is present and unchanged")
        try:
            ids, prefixes = decode_ids(traced.get("ids", "")), split_prefixes(traced.get("row_hash_prefixes", ""))
        except ValueError:
            result.add("traced rows", False, "the statement's list of traced generations is malformed")
            return
        if len(ids) != len(prefixes):
            result.add("traced rows", False, "the statement's traced ids and row hashes do not line up")
            return
        pairs: list[tuple[int, str]] = []
        problems: list[str] = []
        for start in range(0, len(ids), FETCH_CHUNK):
            if cancel.cancelled:
                result.add("traced rows", False, "verification was cancelled")
                return
            chunk = ids[start:start + FETCH_CHUNK]
            with translate_errors(ledger_path):
                rows = _fetch(db, chunk)
            for gid, prefix in zip(chunk, prefixes[start:start + FETCH_CHUNK]):
                row = rows.get(gid)
                if row is None:
                    problems.append(f"ledger row {gid}, traced by the statement, is missing")
                    continue
                current = row_hash(row)
                pairs.append((gid, current))
                if not current.startswith(prefix):
                    problems.append(f"ledger row {gid} differs from the one the statement traced")
        if not problems and traced_digest(pairs) != traced.get("digest"):
            problems.append("the traced ledger rows differ from the statement's digest of them")
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            result.add("traced rows", False, "; ".join(problems[:5]) + more)
        elif not ids:
            result.add("traced rows", False, "the statement traces no generation, so no row of the dataset is "
                       "shown to come from this ledger (it was signed with untraced rows allowed)")
        else:
            result.add("traced rows", True, f"all {len(ids)} traced generations are in the ledger, unchanged")
        chain = Ledger(db, ledger_path).verify(cancel)
        if chain.ok:
            result.add("chain", True, f"the ledger's hash chain verifies ({chain.rows} rows)")
        else:
            result.add("chain", False, f"the ledger's hash chain does not verify: {chain.problem}")
    finally:
        db.close()


def verify_statement(statement_path: Path | str, dataset_path: Path | str, *, ledger_path: Path | str | None = None,
                     public_key: PublicKey | Path | str | None = None, cancel: CancelToken = NEVER) -> VerifyResult:
    """Verify the statement in `statement_path` against the dataset and, when given, the ledger.

    `public_key`: a key object, a PEM file path or PEM text to pin; without it the statement's own
    key is used and the result says it was not pinned. Never raises for a failed check; raises
    StillroomError only when the statement file or the pinned key cannot be read at all.
    """
    statement_path, dataset_path = Path(statement_path), Path(dataset_path)
    result = VerifyResult()
    try:
        text = statement_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StillroomError(f"{statement_path}: cannot read the statement ({exc.strerror or exc})") from exc
    except UnicodeDecodeError:
        result.add("signature", False, "signature does not verify: the statement file is not UTF-8 text (it was modified)")
        return result
    pinned = _key_from(public_key)
    try:
        envelope = json.loads(text)
    except json.JSONDecodeError as exc:
        result.add("signature", False, f"signature does not verify: the statement file is no longer valid JSON "
                   f"(line {exc.lineno}, column {exc.colno}): it was modified")
        return result
    statement = _check_signature(result, envelope, pinned)
    if statement is None:
        return result
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        result.add("statement", False, f"not a Stillroom provenance statement (type {statement.get('_type')}, "
                   f"predicate {statement.get('predicateType')})")
        return result
    result.predicate = statement.get("predicate") or {}
    _check_dataset(result, statement, dataset_path)
    if ledger_path is not None:
        _check_ledger(result, result.predicate, Path(ledger_path), cancel)
    return result
