"""The Merkle leaf of one generation row: a salted commitment to the row.

Leaf data (UTF-8 text, one field a line):

    stillroom-leaf/v1
    id 42
    salt <32 hex: 16 random bytes, made when the row was logged, kept in the ledger>
    row <64 hex: the row's chain hash, which covers every column>
    prompt <64 hex: the normalized content hash of the prompt, or ->
    response <64 hex: the normalized content hash of the response, or ->

and the tree's leaf hash is SHA-256(0x00 || leaf data). Someone holding a row's prompt and
response and the disclosed leaf data checks that the two content hashes in it are those of the
text, then that the leaf is in the tree. Without the salt, a leaf hash reveals nothing about its
row, and a guessed prompt cannot be confirmed against it. 128 random bits make the commitment
hiding (the size SD-JWT, RFC 9901, requires of its disclosure salts) and keep what a statement
discloses per row small (see app/core/provenance/inclusion_codec.py).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from app.core.store.merkle import leaf_hash

LEAF_HEADER = "stillroom-leaf/v1"
SALT_BYTES = 16
MAX_LEAF_DATA = 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SALT_HEX = re.compile(r"[0-9a-f]{%d}" % (2 * SALT_BYTES))
_FIELDS = ("id", "salt", "row", "prompt", "response")


class LeafDataError(ValueError):
    """Leaf data that does not have the stillroom-leaf/v1 form; the message says which part."""


@dataclass(frozen=True)
class LeafFields:
    """The parts of a row's leaf data."""

    generation_id: int
    salt: bytes
    row_hash: str
    prompt_hash: str | None
    response_hash: str | None

    def data(self) -> bytes:
        """The leaf data bytes."""
        return leaf_data(self.generation_id, self.salt, self.row_hash, self.prompt_hash, self.response_hash)

    def leaf_hash(self) -> bytes:
        """SHA-256(0x00 || leaf data)."""
        return leaf_hash(self.data())


def new_salt() -> bytes:
    """SALT_BYTES random bytes for a new row's commitment."""
    return os.urandom(SALT_BYTES)


def leaf_data(generation_id: int, salt: bytes, row_hash: str, prompt_hash: str | None,
              response_hash: str | None) -> bytes:
    """The leaf data of one row (see the module docstring)."""
    return (f"{LEAF_HEADER}\nid {generation_id}\nsalt {salt.hex()}\nrow {row_hash}\n"
            f"prompt {prompt_hash or '-'}\nresponse {response_hash or '-'}\n").encode("ascii")


def parse_leaf_data(data: bytes) -> LeafFields:
    """Read leaf data from outside (a proof's `extra`); LeafDataError naming the part that is wrong.

    Only the exact form leaf_data() writes is accepted, so one row has one leaf encoding."""
    if len(data) > MAX_LEAF_DATA:
        raise LeafDataError(f"leaf data is {len(data)} bytes, more than {MAX_LEAF_DATA}")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise LeafDataError("leaf data is not ASCII text") from exc
    lines = text.split("\n")
    if len(lines) != len(_FIELDS) + 2 or lines[-1] != "":
        raise LeafDataError(f"leaf data must be {len(_FIELDS) + 1} lines ending in a newline")
    if lines[0] != LEAF_HEADER:
        raise LeafDataError(f"leaf data does not start with {LEAF_HEADER!r}")
    values: dict[str, str] = {}
    for name, line in zip(_FIELDS, lines[1:-1]):
        key, _, value = line.partition(" ")
        if key != name or not value:
            raise LeafDataError(f"leaf data line {name!r} is missing or out of order")
        values[name] = value
    if not values["id"].isdigit() or values["id"].startswith("0") or len(values["id"]) > 18:
        raise LeafDataError("leaf data 'id' is not a row number")
    if not _SALT_HEX.fullmatch(values["salt"]):
        raise LeafDataError(f"leaf data 'salt' is not {2 * SALT_BYTES} lowercase hex digits")
    if not _HEX64.fullmatch(values["row"]):
        raise LeafDataError("leaf data 'row' is not 64 lowercase hex digits")
    for name in ("prompt", "response"):
        if values[name] != "-" and not _HEX64.fullmatch(values[name]):
            raise LeafDataError(f"leaf data {name!r} is neither '-' nor 64 lowercase hex digits")
    fields = LeafFields(int(values["id"]), bytes.fromhex(values["salt"]), values["row"],
                        None if values["prompt"] == "-" else values["prompt"],
                        None if values["response"] == "-" else values["response"])
    if fields.data() != data:
        raise LeafDataError("leaf data is not in its one canonical form")
    return fields
