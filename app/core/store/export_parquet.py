"""Export of log rows to Parquet, for analytics engines (DuckDB, Spark, Ray, pandas) that read it in
bulk and for ledgers that outgrow one machine.

Every column of the generations table is written as stored: the JSON columns stay the exact text the
row hash covers, so the chain (`prev_hash`, `row_hash`) can be recomputed from the file alone. Each
row also carries its Merkle leaf (`leaf_index`, `leaf_hash`); the leaf salts are never exported (they
stay on this machine, see app.core.store.tree). The file's key-value metadata names the tree the
leaves belong to (size and root at the time of the export), so a full export can be checked against
a signed checkpoint.

Rows are read a chunk at a time and written a row group at a time, so memory stays bounded by one
row group (ROW_GROUP_ROWS rows or ROW_GROUP_BYTES of text, whichever comes first), whatever the
size of the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from app.core.outfiles import replace_file
from app.core.store.merkle import stored_hash_index
from app.core.store.queries import LogFilter
from app.core.store.schema import GENERATION_COLUMNS, GENERATIONS_TABLE
from app.core.store.tree import HASHES_TABLE, root, tree_size

FORMAT_VERSION = 1
READ_CHUNK = 1000
ROW_GROUP_ROWS = 20_000
ROW_GROUP_BYTES = 64 * 1024 * 1024
METADATA_KEY = b"stillroom"
COMPRESSION = "zstd"
_ARROW_TYPES = {"INTEGER": "int64", "REAL": "float64", "TEXT": "string"}
_COLUMN_LIST = ", ".join(GENERATION_COLUMNS)


def parquet_schema(metadata: dict[str, Any] | None = None) -> Any:
    """The Arrow schema of the export: the generations columns as stored, then the Merkle leaf."""
    import pyarrow as pa

    fields = [pa.field(name, getattr(pa, _ARROW_TYPES[kind])()) for name, kind in GENERATION_COLUMNS.items()]
    fields += [pa.field("leaf_index", pa.int64()), pa.field("leaf_hash", pa.string())]
    return pa.schema(fields, metadata={METADATA_KEY: json.dumps(metadata or {}).encode("utf-8")})


def export_parquet(db: Database, flt: LogFilter, out: Path) -> int:
    """Write the rows matching `flt` (id order) to `out` as Parquet; returns the rows written.

    The file is created owner-only (0600) and replaces `out` atomically once complete, like the
    other export formats. Only rows already in the Merkle tree when the export starts are written,
    so the metadata's tree size and root describe every leaf in the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    size = tree_size(db.conn)
    metadata = {"format_version": FORMAT_VERSION, "tree_size": size,
                "tree_root": root(db.conn, size).hex() if size else None}
    schema = parquet_schema(metadata)
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with replace_file(out, binary=True) as handle:  # owner-only (it holds prompts and responses)
        with pq.ParquetWriter(handle, schema, compression=COMPRESSION) as writer:
            for group in _row_groups(db, flt, size):
                writer.write_table(pa.Table.from_pylist(group, schema=schema))
                count += len(group)
    return count


def _row_groups(db: Database, flt: LogFilter, last_id: int) -> Iterator[list[dict[str, Any]]]:
    """Rows with their leaves, in id order, in lists of at most one row group."""
    group: list[dict[str, Any]] = []
    size = 0
    for row in _rows_with_leaves(db, flt, last_id):
        group.append(row)
        size += sum(len(value) for value in row.values() if isinstance(value, str))
        if len(group) >= ROW_GROUP_ROWS or size >= ROW_GROUP_BYTES:
            yield group
            group, size = [], 0
    if group:
        yield group


def _rows_with_leaves(db: Database, flt: LogFilter, last_id: int) -> Iterator[dict[str, Any]]:
    """Stored rows (JSON columns as text) with id <= last_id matching `flt`, each with its leaf."""
    where, params = flt.where(db)
    names = list(GENERATION_COLUMNS)
    after = 0
    while True:
        chunk = db.execute(f"SELECT {_COLUMN_LIST} FROM {GENERATIONS_TABLE} WHERE {where} AND id > ? AND id <= ? "
                           "ORDER BY id LIMIT ?", [*params, after, last_id, READ_CHUNK]).fetchall()
        if not chunk:
            return
        rows = [dict(zip(names, values)) for values in chunk]
        # leaf i of the tree commits to row i + 1 (app.core.store.tree)
        indexes = {row["id"]: stored_hash_index(0, row["id"] - 1) for row in rows}
        marks = ",".join("?" for _ in indexes)
        leaves = dict(db.execute(f"SELECT idx, hash FROM {HASHES_TABLE} WHERE idx IN ({marks})",
                                 list(indexes.values())).fetchall())
        for row in rows:
            leaf = leaves.get(indexes[row["id"]])
            row["leaf_index"] = row["id"] - 1
            row["leaf_hash"] = leaf.hex() if leaf is not None else None
            yield row
        after = rows[-1]["id"]
