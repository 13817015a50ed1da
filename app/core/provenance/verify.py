"""Verify a provenance statement offline: signature, dataset digest, and (given the ledger) inclusion.

Checks, in order, each recorded with a sentence: the envelope's signature over its payload (with a
key given by the caller, a key remembered for the statement's publisher, or only the key the
statement carries); that the dataset's bytes hash to the subject digest; and with a ledger: that the
chain head the statement recorded is still there unchanged, that every traced generation is in the
ledger with the row hash the statement recorded, and that the chain verifies. A failure's reason
names what changed.

The result also says how far the key can be trusted (`trust`) and lists what the statement claims
that no check covers (`claims`). Every string in a Check or a claim may come from the statement:
show it only through app.core.safetext.
"""

from __future__ import annotations

import binascii
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
from app.core.provenance.publishers import KnownPublishers, PublishersError
from app.core.provenance.verify_inclusion import add_inclusion_checks
from app.core.provenance.traced_ids import count_ids, decode_ids, split_prefixes, traced_digest
from app.core.safetext import quote as safe_quote
from app.core.store import Ledger, open_db
from app.core.store.chain import row_hash
from app.core.store.db import translate_errors
from app.core.store.schema import GENERATION_COLUMNS

FETCH_CHUNK = 500
MAX_STATEMENT_BYTES = 64 * 1024 * 1024
# How the signing key was trusted (VerifyResult.trust).
PINNED_GIVEN = "pinned: given"
PINNED_REMEMBERED = "pinned: remembered"
UNPINNED = "not pinned"
KEY_CHANGED = "key changed"
NO_KEY = "no key"
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
    trust: str = NO_KEY
    trust_detail: str = "the statement could not be read, so no key was checked"
    claims: list[tuple[str, str]] = field(default_factory=list)
    public_key: PublicKey | None = None
    inclusion_summary: str | None = None

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
    result.keyid, result.pinned, result.public_key = key_fingerprint(key), pinned is not None, key
    keyids = {entry.get("keyid") for entry in opened.signatures}
    # DSSE makes keyid optional: a signature without one is tried with the key (signature_valid).
    if result.keyid not in keyids and not keyids & {"", None}:
        which = "the key given" if pinned is not None else "the key the statement carries"
        named = ", ".join(sorted(safe_quote(k, 80) for k in keyids)) or "(none)"
        result.add("signature", False, f"signature does not verify: the envelope was signed by key "
                   f"{named}, not by {which} ({result.keyid})")
        return None
    if opened.payload_type != PAYLOAD_TYPE:
        result.add("signature", False, f"signature does not verify: unexpected payload type "
                   f"{safe_quote(opened.payload_type, 80)}")
        return None
    if not signature_valid(opened, key):
        result.add("signature", False, "signature does not verify: the statement was modified")
        return None
    if statement is None:
        result.add("signature", False, "the signed payload is not a JSON statement")
        return None
    trust = "the pinned key" if pinned is not None else "the key the statement carries"
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
                   f"({actual} in {dataset_path.name}, {safe_quote(expected, 80)} in the statement)")
    else:
        result.add("dataset", True, f"dataset sha256 {actual} matches the statement's subject "
                   f"(named {safe_quote(subjects[0].get('name'), 80)} in the statement)")


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
        if head_id is not None and (not isinstance(head_id, int) or isinstance(head_id, bool) or head_id < 0):
            result.add("chain head", False, "the statement's chain head is not a row number")
            return
        with translate_errors(ledger_path):
            head_row = _fetch(db, [head_id]).get(head_id) if head_id else None
            top = db.execute("SELECT max(id) FROM generations").fetchone()[0] or 0
        if not head_id:
            result.add("chain head", True, "the ledger was empty when the statement was made")
        elif head_row is None:
            result.add("chain head", False, f"ledger row {head_id}, the chain head the statement recorded, is missing")
        elif row_hash(head_row) != head_hash or head_row["row_hash"] != head_hash:
            result.add("chain head", False, f"ledger row {head_id} differs from the chain head the statement recorded")
        else:
            result.add("chain head", True, f"the chain head the statement recorded (row {head_id}) is present and unchanged")
        try:
            ids_text = str(traced.get("ids", ""))
            highest = count_ids(ids_text)[1]
            if highest > top:
                result.add("traced rows", False, f"the statement traces generations up to row {highest}, but the "
                           f"ledger holds rows up to {top} only")
                return
            ids, prefixes = decode_ids(ids_text, limit=top), split_prefixes(str(traced.get("row_hash_prefixes", "")))
        except (ValueError, binascii.Error):
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
                     public_key: PublicKey | Path | str | None = None, publishers: Path | str | None = None,
                     checkpoints_seen: Path | str | None = None, consistency: Path | str | None = None,
                     cancel: CancelToken = NEVER) -> VerifyResult:
    """Verify the statement in `statement_path` against the dataset and, when given, the ledger.

    `public_key`: a key object, a PEM file path or PEM text to pin. Without it the statement's own
    key is used; with `publishers` (a known-publishers file, see publishers.py) that key is checked
    against the one remembered for the statement's publisher, or remembered on first use. The
    result's `trust` says which happened. The statement's checkpoint and inclusion proofs are checked
    against the dataset (verify_inclusion); with `checkpoints_seen` (a file) the checkpoint is compared
    with those seen before, using the statement's consistency proofs or the one in `consistency`. Never raises for a failed check; raises StillroomError
    only when the statement file, the pinned key or the publishers file cannot be read at all.
    """
    statement_path, dataset_path = Path(statement_path), Path(dataset_path)
    result = VerifyResult()
    try:
        size = statement_path.stat().st_size
        if size > MAX_STATEMENT_BYTES:
            result.add("statement", False, f"the statement file is {size} bytes, more than the "
                       f"{MAX_STATEMENT_BYTES} any Stillroom statement reaches; not read")
            return result
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
        result.trust_detail = "no key verified the statement's signature"
        return result
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        result.add("statement", False, f"not a Stillroom provenance statement (type "
                   f"{safe_quote(statement.get('_type'), 80)}, predicate {safe_quote(statement.get('predicateType'), 80)})")
        return result
    predicate = statement.get("predicate")
    result.predicate = predicate if isinstance(predicate, dict) else {}
    _decide_trust(result, statement_path, publishers)
    _check_dataset(result, statement, dataset_path)
    _check_traces_something(result, result.predicate)
    if ledger_path is not None:
        _check_ledger(result, result.predicate, Path(ledger_path), cancel)
    result.claims = statement_claims(result.predicate)
    add_inclusion_checks(result, dataset_path, None if checkpoints_seen is None else Path(checkpoints_seen),
                         None if consistency is None else Path(consistency))
    return result


def _check_traces_something(result: VerifyResult, predicate: dict[str, Any]) -> None:
    """A statement that traces no dataset row to the ledger (signed with --allow-untraced) proves
    nothing about where the rows came from: a failed check, not a silent pass."""
    matching = predicate.get("matching")
    counts = matching.get("counts") if isinstance(matching, dict) else None
    if not isinstance(counts, dict):
        result.add("traced", False, "the statement records no matching counts, so it traces nothing")
        return
    traced = sum(v for k, v in counts.items() if k in ("traced-exact", "traced-near") and isinstance(v, int))
    if traced <= 0:
        result.add("traced", False, "the statement traces no row of the dataset to the ledger: it says nothing "
                   "about where the rows came from")


def _publisher(predicate: dict[str, Any]) -> str | None:
    declared = predicate.get("declared")
    creator = declared.get("creator") if isinstance(declared, dict) else None
    if not isinstance(creator, str) or not creator.strip() or creator.strip() == "not declared":
        return None
    return creator.strip()


def _decide_trust(result: VerifyResult, statement_path: Path, publishers: Path | str | None) -> None:
    """Set result.trust: pinned by the caller's key, pinned by a key remembered for the publisher,
    a changed key (a failed check), or not pinned (remembering the key when the publisher is new)."""
    if result.pinned:
        result.trust, result.trust_detail = PINNED_GIVEN, f"the key given with --key, fingerprint {result.keyid}"
        return
    publisher = _publisher(result.predicate or {})
    unpinned = f"anyone could have signed this: checked only with the key the statement carries, " \
               f"fingerprint {result.keyid}"
    result.trust, result.trust_detail = UNPINNED, unpinned
    if publishers is None:
        return
    if publisher is None:
        result.trust_detail = unpinned + "; the statement names no creator, so its key cannot be remembered"
        return
    try:
        known = KnownPublishers(publishers)
        remembered = known.lookup(publisher)
        if remembered is None:
            known.remember(publisher, str(result.keyid), statement_path.name)
            result.trust_detail = (f"{unpinned}; first statement seen from publisher {safe_quote(publisher, 80)}: "
                                   f"its key is remembered from now on")
            return
    except PublishersError as exc:
        result.trust_detail = f"{unpinned}; the remembered publishers cannot be used: {exc}"
        return
    if remembered.fingerprint == result.keyid:
        result.trust = PINNED_REMEMBERED
        result.trust_detail = (f"the key remembered for publisher {safe_quote(publisher, 80)} since "
                               f"{remembered.first_seen} (trust on first use), fingerprint {result.keyid}")
        return
    result.trust = KEY_CHANGED
    result.trust_detail = (f"WARNING: THE PUBLISHER'S KEY HAS CHANGED. Publisher {safe_quote(publisher, 80)} signed "
                           f"with key {remembered.fingerprint} before (remembered {remembered.first_seen}); this "
                           f"statement is signed with {result.keyid}. Someone may be impersonating the publisher")
    result.add("publisher key", False, f"the key differs from the one remembered for publisher "
               f"{safe_quote(publisher, 80)} ({remembered.fingerprint}); if the publisher really changed keys, "
               f"verify with --key and their new public key, or remove the entry from {Path(publishers).name}")


def statement_claims(predicate: dict[str, Any]) -> list[tuple[str, str]]:
    """What the statement says that no check covers, as (what, text) pairs. Text is escaped."""
    claims: list[tuple[str, str]] = []
    declared = predicate.get("declared")
    if isinstance(declared, dict):
        for key in ("creator", "name", "license"):
            if key in declared:
                claims.append((key, f"{safe_quote(declared[key], 80)} (declared by the publisher; nothing checks it)"))
    models = predicate.get("models")
    if isinstance(models, list):
        for model in models[:5]:
            if isinstance(model, dict):
                claims.append(("model", f"{safe_quote(model.get('name'), 60)}, license {safe_quote(model.get('license'), 40)}, "
                               f"base model {safe_quote(model.get('base_model'), 60)} (from the publisher's models "
                               f"table; not covered by the ledger's chain)"))
        if len(models) > 5:
            claims.append(("model", f"and {len(models) - 5} more"))
    screening = predicate.get("screening")
    if isinstance(screening, dict) and screening.get("status") == "run":
        flagged = []
        for workflow in screening.get("workflows") or []:
            if isinstance(workflow, dict) and isinstance(workflow.get("levels"), dict):
                raised = [f"{k}={v}" for k, v in workflow["levels"].items() if v != "none"]
                flagged.append(f"{workflow.get('name')}: {', '.join(raised) or 'none'}")
        claims.append(("screening", f"{safe_quote('; '.join(flagged), 200)} (from the publisher's audit scores; "
                       f"not covered by the ledger's chain)"))
    return claims
