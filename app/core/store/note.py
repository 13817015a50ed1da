"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, as Go's golang.org/x/mod/sumdb/note.

A signed note is its text (non-empty UTF-8 lines, each ending in a newline, no blank line), a blank
line, then one line per signature: U+2014 EM DASH, a space, the key name, a space, and
base64(4-byte key id || 64-byte signature over the text). An Ed25519 key id is the first 4 bytes of
SHA-256(name || 0x0A || 0x01 || public key); its verifier key is written
`name+<key id hex>+base64(0x01 || public key)`. Signatures by other keys are ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from app.core.errors import StillroomError

ALG_ED25519 = 0x01
MAX_NOTE_BYTES = 64 * 1024
MAX_SIGNATURES = 100
MAX_NAME_CHARS = 256
SIGNATURE_PREFIX = "\u2014 "


class NoteError(StillroomError):
    """A signed note, or a verifier key, that is malformed or does not verify; the message says which."""


@dataclass(frozen=True)
class VerifierKey:
    """A signed-note verifier: the key name, its 4-byte id and the Ed25519 public key."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    def text(self) -> str:
        """The `name+hexid+base64key` form, safe to publish."""
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(bytes([ALG_ED25519]) + _raw(self.public_key)).decode()}"


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def check_key_name(name: str) -> None:
    """NoteError unless `name` is a usable key name (non-empty, no spaces, no '+')."""
    if not name or len(name) > MAX_NAME_CHARS or "+" in name or any(c.isspace() or not c.isprintable() for c in name):
        raise NoteError(f"{name[:60]!r} is not a signed-note key name (no spaces, no '+', at most "
                        f"{MAX_NAME_CHARS} characters)")


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte key id of an Ed25519 key under `name`."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + _raw(public_key)).digest()[:4]


def verifier_for(name: str, key: Ed25519PrivateKey | Ed25519PublicKey) -> VerifierKey:
    """The verifier key of `key` under `name`."""
    check_key_name(name)
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return VerifierKey(name, key_id(name, public), public)


def parse_verifier_key(text: str) -> VerifierKey:
    """Read a `name+hexid+base64key` verifier key; NoteError naming what is wrong."""
    text = text.strip()
    if len(text) > MAX_NAME_CHARS + 64:
        raise NoteError("the verifier key is too long")
    parts = text.split("+", 2)  # the base64 key may itself hold "+"
    if len(parts) != 3:
        raise NoteError("a verifier key has the form name+hexid+base64key")
    name, hex_id, encoded = parts
    check_key_name(name)
    try:
        raw = base64.b64decode(encoded, validate=True)
        wanted_id = bytes.fromhex(hex_id)
    except (binascii.Error, ValueError) as exc:
        raise NoteError("the verifier key's id or key is not valid hex / base64") from exc
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise NoteError("the verifier key is not an Ed25519 key (algorithm 0x01, 32 bytes)")
    public = Ed25519PublicKey.from_public_bytes(raw[1:])
    if len(wanted_id) != 4 or key_id(name, public) != wanted_id:
        raise NoteError("the verifier key's id does not match its name and key")
    return VerifierKey(name, wanted_id, public)


def _check_text(text: str) -> None:
    if not text or not text.endswith("\n") or "\n\n" in text:
        raise NoteError("a note's text must be non-empty lines, each ending in a newline, with no blank line")
    if any(not c.isprintable() and c != "\n" for c in text):
        raise NoteError("a note's text must not hold control characters")


def sign_note(text: str, name: str, key: Ed25519PrivateKey) -> str:
    """`text` as a signed note, signed by `key` under `name`."""
    _check_text(text)
    verifier = verifier_for(name, key)
    signature = key.sign(text.encode("utf-8"))
    return f"{text}\n{SIGNATURE_PREFIX}{name} {base64.b64encode(verifier.key_id + signature).decode()}\n"


def open_note(message: str, verifier: VerifierKey) -> str:
    """The text of a signed note that carries a valid signature by `verifier`; NoteError otherwise.

    Reads at most MAX_NOTE_BYTES and MAX_SIGNATURES; a signature line by `verifier`'s name and id
    that does not verify fails, as does a note with no signature by it."""
    if len(message.encode("utf-8", "replace")) > MAX_NOTE_BYTES:
        raise NoteError(f"the signed note is longer than {MAX_NOTE_BYTES} bytes")
    split = message.rfind("\n\n")
    if split < 0:
        raise NoteError("the signed note has no blank line before its signatures")
    text, block = message[:split + 1], message[split + 2:]
    _check_text(text)
    if not block.endswith("\n"):
        raise NoteError("the signed note's last signature line does not end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"the signed note has more than {MAX_SIGNATURES} signatures")
    found = False
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("a signature line of the note does not start with an em dash and a space")
        name, _, encoded = line[len(SIGNATURE_PREFIX):].partition(" ")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise NoteError(f"the note's signature by {name[:60]!r} is not valid base64") from exc
        if len(blob) < 5:
            raise NoteError(f"the note's signature by {name[:60]!r} is too short")
        if name != verifier.name or blob[:4] != verifier.key_id:
            continue  # another key's signature: ignored
        try:
            verifier.public_key.verify(blob[4:], text.encode("utf-8"))
        except InvalidSignature as exc:
            raise NoteError(f"the note's signature by {name} does not verify: the note was altered") from exc
        found = True
    if not found:
        raise NoteError(f"the note carries no signature by the key {verifier.name}+{verifier.key_id.hex()}")
    return text
