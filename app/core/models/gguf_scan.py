"""A fast scan of a GGUF file's header: metadata and tensor table, using the `gguf` package's types.

gguf.GGUFReader turns every entry of the tokenizer vocabulary into numpy views, which takes about
9 s for a 262k-token vocabulary; a model manager needs the header in milliseconds. This scanner
reads the same format (magic, version, key/value pairs, tensor infos) sequentially, keeps small
values, skips large arrays (recording their length), and computes each tensor's size with the
gguf package's quantization table. Any inconsistency raises GGUFScanError.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from gguf.constants import GGML_QUANT_SIZES, GGUF_DEFAULT_ALIGNMENT, GGMLQuantizationType, GGUFValueType

MAGIC = b"GGUF"
MAX_KEY_BYTES = 1 << 16
MAX_STRING_BYTES = 1 << 26
MAX_ARRAY_ITEMS = 1 << 31
MAX_COUNT = 1 << 20
MAX_DIMS = 8
KEPT_ARRAY_ITEMS = 64
READ_BUFFER = 1 << 20

_SCALARS: dict[GGUFValueType, str] = {
    GGUFValueType.UINT8: "<B", GGUFValueType.INT8: "<b", GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h", GGUFValueType.UINT32: "<I", GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f", GGUFValueType.BOOL: "<?", GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q", GGUFValueType.FLOAT64: "<d",
}


class GGUFScanError(Exception):
    """The file is not a consistent GGUF header (bad magic, impossible sizes, cut short)."""


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of the tensor table: name, shape, quantization type, and where its bytes are."""

    name: str
    shape: tuple[int, ...]
    qtype: int
    offset: int
    n_bytes: int


@dataclass
class GGUFHeader:
    """The scanned header. `array_lengths` holds the length of every array value, kept or not."""

    version: int
    fields: dict[str, Any] = field(default_factory=dict)
    array_lengths: dict[str, int] = field(default_factory=dict)
    tensors: list[TensorEntry] = field(default_factory=list)
    data_start: int = 0

    @property
    def data_end(self) -> int:
        """Byte offset just past the last tensor's data."""
        return self.data_start + max((t.offset + t.n_bytes for t in self.tensors), default=0)


class _Reader:
    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle

    def take(self, size: int) -> bytes:
        data = self.handle.read(size)
        if len(data) != size:
            raise GGUFScanError("the file ends inside its header")
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self, limit: int = MAX_STRING_BYTES) -> str:
        length = self.unpack("<Q")
        if length > limit:
            raise GGUFScanError(f"a string of {length} bytes in the header is implausible")
        return self.take(length).decode("utf-8", errors="replace")

    def skip(self, size: int) -> None:
        self.handle.seek(size, 1)

    def value(self, kind: int, key: str, header: GGUFHeader) -> Any:
        try:
            vtype = GGUFValueType(kind)
        except ValueError as exc:
            raise GGUFScanError(f"unknown value type {kind} for key {key!r}") from exc
        if vtype == GGUFValueType.STRING:
            return self.string()
        if vtype != GGUFValueType.ARRAY:
            return self.unpack(_SCALARS[vtype])
        item_kind, count = self.unpack("<I"), self.unpack("<Q")
        if count > MAX_ARRAY_ITEMS:
            raise GGUFScanError(f"an array of {count} items for key {key!r} is implausible")
        header.array_lengths[key] = count
        try:
            item_type = GGUFValueType(item_kind)
        except ValueError as exc:
            raise GGUFScanError(f"unknown array item type {item_kind} for key {key!r}") from exc
        keep = count <= KEPT_ARRAY_ITEMS
        if item_type == GGUFValueType.STRING:
            items = []
            for _ in range(count):
                if keep:
                    items.append(self.string())
                else:
                    length = self.unpack("<Q")
                    if length > MAX_STRING_BYTES:
                        raise GGUFScanError(f"a string of {length} bytes in {key!r} is implausible")
                    self.skip(length)
            return items if keep else None
        if item_type == GGUFValueType.ARRAY:
            raise GGUFScanError(f"nested arrays in key {key!r} are not supported")
        fmt = _SCALARS[item_type]
        size = struct.calcsize(fmt)
        if keep:
            return [struct.unpack(fmt, self.take(size))[0] for _ in range(count)]
        self.skip(size * count)
        return None


def _tensor_bytes(name: str, shape: tuple[int, ...], qtype: int) -> int:
    try:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(qtype)]
    except (ValueError, KeyError) as exc:
        raise GGUFScanError(f"tensor {name!r} has an unknown type {qtype}") from exc
    elements = 1
    for dim in shape:
        elements *= dim
    if elements % block:
        raise GGUFScanError(f"tensor {name!r} has {elements} elements, not a multiple of its block size {block}")
    return elements // block * type_size


def scan_gguf(path: Path) -> GGUFHeader:
    """Scan the header of the GGUF at `path`. Raises GGUFScanError on any inconsistency."""
    with path.open("rb", buffering=READ_BUFFER) as handle:
        reader = _Reader(handle)
        if reader.take(4) != MAGIC:
            raise GGUFScanError("it does not start with the GGUF magic bytes")
        version = reader.unpack("<I")
        if version not in (2, 3):
            raise GGUFScanError(f"unsupported GGUF version {version}")
        tensor_count, kv_count = reader.unpack("<Q"), reader.unpack("<Q")
        if tensor_count > MAX_COUNT or kv_count > MAX_COUNT:
            raise GGUFScanError(f"implausible counts ({tensor_count} tensors, {kv_count} keys)")
        header = GGUFHeader(version)
        for _ in range(kv_count):
            key = reader.string(MAX_KEY_BYTES)
            header.fields[key] = reader.value(reader.unpack("<I"), key, header)
        for _ in range(tensor_count):
            name = reader.string(MAX_KEY_BYTES)
            n_dims = reader.unpack("<I")
            if n_dims > MAX_DIMS:
                raise GGUFScanError(f"tensor {name!r} has {n_dims} dimensions")
            shape = tuple(reader.unpack("<Q") for _ in range(n_dims))
            qtype, offset = reader.unpack("<I"), reader.unpack("<Q")
            header.tensors.append(TensorEntry(name, shape, qtype, offset, _tensor_bytes(name, shape, qtype)))
        alignment = header.fields.get("general.alignment", GGUF_DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0:
            raise GGUFScanError(f"invalid alignment {alignment!r}")
        position = handle.tell()
        header.data_start = (position + alignment - 1) // alignment * alignment
        return header
