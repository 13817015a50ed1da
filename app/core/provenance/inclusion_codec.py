"""The binary form of a statement's batch inclusion proof (format stillroom.dev/batch-inclusion@v1).

What a verifier cannot recompute from the dataset is written once per traced ledger row; what it
can (the row's id from a delta, the content hash of the response and, usually, of the prompt) is
left out. Layout, before zlib compression and base64:

    magic "SRIB1"
    varint E (entries), varint K (multiproof nodes)
    E entries, sorted by (ledger row id, dataset row index):
        varint  id delta (the first: the id itself; 0: the same ledger row as the entry before)
        zigzag  dataset row index delta (from the entry before; the first from 0)
        -- only when the id delta is not 0 (a new leaf):
        byte    prompt: 0 = the content hash of the dataset row's prompt, 1 = 32 bytes follow,
                2 = the ledger row has no prompt hash ('-')
        16      the row's salt (SALT_BYTES)
        32      the row's chain hash
        [32]    the prompt's content hash (prompt byte 1)
        4       the first bytes of the response's content hash (names a changed dataset row)
        [2]     the first bytes of the prompt's content hash (prompt byte 0)
    K nodes of 32 bytes (app.core.store.multiproof, in its order)

Salts and chain hashes are random-looking, 48 bytes a row that no compression removes; the rest
(ids, row indexes, flags) compresses to almost nothing when the traced rows are runs.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from app.core.store.commitment import SALT_BYTES

MAGIC = b"SRIB1"
MAX_ENTRIES = 5_000_000
MAX_ENTRY_BYTES = 10 + 10 + 1 + SALT_BYTES + 32 + 32 + 4 + 2
PROMPT_FROM_ROW, PROMPT_GIVEN, PROMPT_NONE = 0, 1, 2
CHECK_BYTES, PROMPT_CHECK_BYTES = 4, 2


class CodecError(ValueError):
    """Proof bytes that do not decode; the message says where."""


@dataclass(frozen=True)
class Entry:
    """One dataset row traced to one ledger row, with that row's disclosed leaf fields."""

    generation_id: int
    row_index: int
    salt: bytes
    row_hash: bytes
    prompt_mode: int
    prompt_hash: bytes | None  # given (PROMPT_GIVEN) only
    response_check: bytes
    prompt_check: bytes | None  # PROMPT_FROM_ROW only


def _varint(value: int, out: bytearray) -> None:
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _zigzag(value: int) -> int:
    return value * 2 if value >= 0 else -value * 2 - 1


def encode(entries: list[Entry], nodes: list[bytes]) -> bytes:
    """The compressed bytes of `entries` (sorted by id, then row index) and the multiproof nodes."""
    out = bytearray(MAGIC)
    _varint(len(entries), out)
    _varint(len(nodes), out)
    last_id = last_row = 0
    for entry in entries:
        _varint(entry.generation_id - last_id, out)
        _varint(_zigzag(entry.row_index - last_row), out)
        if entry.generation_id != last_id:
            if len(entry.salt) != SALT_BYTES or len(entry.row_hash) != 32:
                raise ValueError(f"row {entry.generation_id}: a salt is {SALT_BYTES} bytes and a chain hash 32")
            out.append(entry.prompt_mode)
            out += entry.salt + entry.row_hash
            if entry.prompt_mode == PROMPT_GIVEN:
                out += entry.prompt_hash or b""
            out += entry.response_check
            if entry.prompt_mode == PROMPT_FROM_ROW:
                out += entry.prompt_check or b""
        last_id, last_row = entry.generation_id, entry.row_index
    for node in nodes:
        out += node
    return zlib.compress(bytes(out), 9)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise CodecError(f"the proof ends inside {what}")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def varint(self, what: str) -> int:
        value = shift = 0
        while True:
            if shift > 63:
                raise CodecError(f"{what} is not a number")
            byte = self.take(1, what)[0]
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value


def decode(blob: bytes, max_entries: int = MAX_ENTRIES) -> tuple[list[Entry], list[bytes]]:
    """Entries and nodes from encode()'s bytes; CodecError naming what is wrong. Sizes are read
    from the header and bounded before the rest is decompressed."""
    inflater = zlib.decompressobj()
    try:
        head = inflater.decompress(blob, 32)
    except zlib.error as exc:
        raise CodecError("the proof bytes are not zlib data") from exc
    if not head.startswith(MAGIC):
        raise CodecError("the proof bytes do not start with SRIB1")
    reader = _Reader(head[len(MAGIC):])
    count = reader.varint("the entry count")
    node_count = reader.varint("the node count")
    if count > max_entries:
        raise CodecError(f"the proof holds {count} rows, more than the {max_entries} allowed")
    if node_count > count * 64 + 64:
        raise CodecError(f"the proof holds {node_count} tree nodes, more than {count} rows can need")
    limit = count * MAX_ENTRY_BYTES + node_count * 32
    try:
        rest = inflater.decompress(inflater.unconsumed_tail, limit + 1)
    except zlib.error as exc:
        raise CodecError("the proof bytes are damaged (zlib)") from exc
    if len(rest) > limit or inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
        raise CodecError("the proof bytes hold more than their header says, or are cut short")
    reader = _Reader(head[len(MAGIC) + reader.pos:] + rest)
    entries: list[Entry] = []
    last_id = last_row = 0
    previous: Entry | None = None
    for number in range(1, count + 1):
        delta = reader.varint(f"entry {number}'s id")
        zig = reader.varint(f"entry {number}'s row index")
        row_index = last_row + (zig >> 1 if not zig & 1 else -((zig + 1) >> 1))
        if row_index < 0:
            raise CodecError(f"entry {number}'s dataset row index is negative")
        if delta == 0:
            if previous is None or row_index <= previous.row_index:
                raise CodecError(f"entry {number} repeats no ledger row, or is out of order")
            entry = Entry(previous.generation_id, row_index, previous.salt, previous.row_hash, previous.prompt_mode,
                          previous.prompt_hash, previous.response_check, previous.prompt_check)
        else:
            mode = reader.take(1, f"entry {number}'s prompt byte")[0]
            if mode not in (PROMPT_FROM_ROW, PROMPT_GIVEN, PROMPT_NONE):
                raise CodecError(f"entry {number}'s prompt byte is {mode}")
            salt = reader.take(SALT_BYTES, f"entry {number}'s salt")
            row_hash = reader.take(32, f"entry {number}'s row hash")
            prompt_hash = reader.take(32, f"entry {number}'s prompt hash") if mode == PROMPT_GIVEN else None
            check = reader.take(CHECK_BYTES, f"entry {number}'s response check")
            prompt_check = reader.take(PROMPT_CHECK_BYTES, f"entry {number}'s prompt check") \
                if mode == PROMPT_FROM_ROW else None
            entry = Entry(last_id + delta, row_index, salt, row_hash, mode, prompt_hash, check, prompt_check)
        entries.append(entry)
        previous, last_id, last_row = entry, entry.generation_id, row_index
    nodes = [reader.take(32, f"tree node {i + 1}") for i in range(node_count)]
    if reader.pos != len(reader.data):
        raise CodecError("the proof bytes hold more than their header says")
    return entries, nodes
