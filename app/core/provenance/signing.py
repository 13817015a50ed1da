"""The publisher's Ed25519 key, and in-toto Statements in signed DSSE envelopes.

The key is made on first use in the data folder (`keys/provenance-ed25519.pem`, folder mode 0700,
file mode 0600). Its fingerprint, also the envelope's keyid, is the sha256 hex of the raw 32-byte
public key. The signature covers DSSE's pre-authentication encoding (PAE) of the payload type and
the payload bytes, so a change to either makes it fail.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from app.core.errors import StillroomError
from app.core.paths import PRIVATE_DIR_MODE, data_dir

KEYS_SUBDIR = "keys"
PRIVATE_KEY_FILE = "provenance-ed25519.pem"
PRIVATE_FILE_MODE = 0o600
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://stillroom.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"

SigningKey = Ed25519PrivateKey
PublicKey = Ed25519PublicKey


class SigningError(StillroomError):
    """A key file or an envelope cannot be read, or does not have the expected form."""


def key_dir_path(key_dir: Path | str | None = None) -> Path:
    """The folder holding the private key: `key_dir`, or `keys/` in the data folder."""
    return Path(key_dir) if key_dir is not None else data_dir() / KEYS_SUBDIR


def load_or_create_key(key_dir: Path | str | None = None) -> SigningKey:
    """The publisher's private key, created (0600, in a 0700 folder) the first time it is asked for.

    The key is written to a temporary file and linked into place, so a process killed while
    creating it leaves no key file rather than an empty one; an empty key file (from an older
    version killed at that instant) held no key, signed nothing, and is replaced.
    """
    folder = key_dir_path(key_dir)
    path = folder / PRIVATE_KEY_FILE
    if path.exists() and not _is_empty(path):
        return _read_private_key(path)
    folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    os.chmod(folder, PRIVATE_DIR_MODE)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    temp = folder / f".{PRIVATE_KEY_FILE}.{os.getpid()}.tmp"
    try:
        fd = os.open(temp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, PRIVATE_FILE_MODE)
        if path.exists():  # the empty leftover: replace it
            os.replace(temp, path)
        else:
            try:
                os.link(temp, path)  # fails if another process made the key first
            except FileExistsError:
                return _read_private_key(path)  # use theirs
    except OSError as exc:
        raise SigningError(f"{path}: cannot create the signing key ({exc.strerror or exc})") from exc
    finally:
        try:
            os.unlink(temp)
        except OSError:
            pass
    return key


def _is_empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


def _read_private_key(path: Path) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise SigningError(f"{path}: not a readable private key ({exc})") from exc
    except OSError as exc:
        raise SigningError(f"{path}: cannot read the key ({exc.strerror or exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path}: not an Ed25519 key")
    return key


def _public(key: SigningKey | PublicKey) -> PublicKey:
    return key.public_key() if isinstance(key, Ed25519PrivateKey) else key


def public_key_pem(key: SigningKey | PublicKey) -> str:
    """The public key as PEM text (SubjectPublicKeyInfo), safe to publish."""
    return _public(key).public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def key_fingerprint(key: SigningKey | PublicKey) -> str:
    """sha256 hex of the raw 32-byte public key; the keyid of the envelopes it signs."""
    raw = _public(key).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_public_key(data: str | bytes | Path) -> PublicKey:
    """A public key from PEM text, PEM bytes or a PEM file; SigningError when it is not Ed25519."""
    if isinstance(data, Path):
        try:
            data = data.read_bytes()
        except OSError as exc:
            raise SigningError(f"{data}: cannot read the public key ({exc.strerror or exc})") from exc
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    try:
        key = serialization.load_pem_public_key(raw)
    except (ValueError, TypeError) as exc:
        raise SigningError(f"not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError("the public key is not an Ed25519 key")
    return key


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: "DSSEv1 <len> <type> <len> <body>"."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def in_toto_statement(subject_name: str, subject_sha256: str, predicate: dict[str, Any]) -> dict[str, Any]:
    """An in-toto Statement v1 about one file, with Stillroom's provenance predicate."""
    return {"_type": STATEMENT_TYPE, "subject": [{"name": subject_name, "digest": {"sha256": subject_sha256}}],
            "predicateType": PREDICATE_TYPE, "predicate": predicate}


def sign_envelope(statement: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    """A DSSE envelope holding `statement` (compact UTF-8 JSON), signed with `key`."""
    payload = json.dumps(statement, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
    signature = key.sign(pae(PAYLOAD_TYPE, payload))
    return {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode("ascii"),
            "signatures": [{"keyid": key_fingerprint(key), "sig": base64.b64encode(signature).decode("ascii")}]}


@dataclass(frozen=True)
class OpenedEnvelope:
    """An envelope's parts: the decoded payload bytes, its statement, and its signatures."""

    payload_type: str
    payload: bytes
    statement: dict[str, Any] | None
    signatures: list[dict[str, str]]


def open_envelope(envelope: Any) -> OpenedEnvelope:
    """Decode a DSSE envelope (not yet checked); SigningError naming what is malformed."""
    if not isinstance(envelope, dict):
        raise SigningError("not a DSSE envelope: expected a JSON object")
    for name in ("payloadType", "payload", "signatures"):
        if name not in envelope:
            raise SigningError(f"not a DSSE envelope: no {name!r}")
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
    except (binascii.Error, TypeError, ValueError) as exc:
        raise SigningError("the envelope's payload is not valid base64: the statement was modified") from exc
    signatures = envelope["signatures"]
    if not isinstance(signatures, list) or not all(isinstance(s, dict) for s in signatures):
        raise SigningError("the envelope's signatures are not a list of {keyid, sig}")
    try:
        statement = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        statement = None
    return OpenedEnvelope(str(envelope["payloadType"]), payload,
                          statement if isinstance(statement, dict) else None, signatures)


def signature_valid(opened: OpenedEnvelope, key: PublicKey) -> bool:
    """True when one of the envelope's signatures by `key`'s keyid verifies over the PAE."""
    keyid = key_fingerprint(key)
    message = pae(opened.payload_type, opened.payload)
    for entry in opened.signatures:
        if entry.get("keyid") not in (keyid, "", None):
            continue
        try:
            key.verify(base64.b64decode(entry.get("sig", ""), validate=True), message)
        except (InvalidSignature, binascii.Error, ValueError, TypeError):
            continue
        return True
    return False
