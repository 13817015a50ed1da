"""The ledger's Merkle tree in SQLite: per-row salts, the stored hashes, building and checking.

Beside the hash chain, every generation row is a leaf of an RFC 6962 tree (app.core.store.merkle):
leaf i (0-based) commits to row i + 1 (app.core.store.commitment). Tables:

- `merkle_hashes(idx, hash, salt)`: every complete subtree hash at its tlog stored-hash index; leaf
  i's hash is at stored_hash_index(0, i), and that entry also keeps row i + 1's random salt
  (SALT_BYTES) (NULL for interior hashes). Salts never leave the machine except for rows a proof or
  statement discloses; they live outside the generations table so that exports and `SELECT *`
  never carry them. A tree of n leaves stores 2n - popcount(n) hashes.
- `merkle_log(id, origin)`: the log's origin line for its checkpoints, random per ledger.

append_leaves runs inside the ledger's append transaction, so a row and its leaf commit together.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.core.cancel import NEVER, CancelToken
from app.core.errors import LedgerError
from app.core.store.chain import row_hash
from app.core.store.commitment import SALT_BYTES, leaf_data, new_salt
from app.core.store.merkle import (
    Frontier,
    HashReader,
    consistency_proof,
    hashes_for_leaf,
    inclusion_proof,
    leaf_hash,
    parent_indexes,
    stored_hash_count,
    stored_hash_index,
    tree_hash,
)
from app.core.store.schema import GENERATION_COLUMNS, GENERATIONS_TABLE

HASHES_TABLE = "merkle_hashes"
LOG_TABLE = "merkle_log"
ORIGIN_PREFIX = "stillroom.dev/ledger/"
BUILD_CHUNK = 20_000
VERIFY_CHUNK = 5_000
_COLUMN_LIST = ", ".join(GENERATION_COLUMNS)


def create_tables(conn: sqlite3.Connection) -> None:
    """Create the tree's tables and the log's origin (used by the migration)."""
    conn.execute(f"CREATE TABLE IF NOT EXISTS {HASHES_TABLE} (idx INTEGER PRIMARY KEY, hash BLOB NOT NULL, salt BLOB)")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {LOG_TABLE} (id INTEGER PRIMARY KEY CHECK (id = 1), origin TEXT NOT NULL)")
    conn.execute(f"INSERT OR IGNORE INTO {LOG_TABLE} (id, origin) VALUES (1, ?)",
                 (ORIGIN_PREFIX + secrets.token_hex(8),))


def build_tree(conn: sqlite3.Connection) -> int:
    """Give every existing row a salt and a leaf, and store the whole tree; returns the leaf count.

    For a ledger logged before the tree existed. Leaves follow the row ids in order; the chain's
    own hashes are read, not changed."""
    if conn.execute(f"SELECT 1 FROM {HASHES_TABLE} LIMIT 1").fetchone():
        raise LedgerError("the Merkle tree is already built")
    frontier = Frontier()
    index = 0  # the stored index of the next leaf: the hashes of leaf n follow those of leaf n - 1
    cursor = conn.execute(f"SELECT id, row_hash, prompt_hash, response_hash FROM {GENERATIONS_TABLE} ORDER BY id")
    while True:
        chunk = cursor.fetchmany(BUILD_CHUNK)
        if not chunk:
            break
        randomness = os.urandom(SALT_BYTES * len(chunk))
        entries: list[tuple[int, bytes, bytes | None]] = []
        for k, (rid, chained, prompt_hash, response_hash) in enumerate(chunk):
            salt = randomness[k * SALT_BYTES:(k + 1) * SALT_BYTES]
            stored = frontier.append(leaf_hash(leaf_data(rid, salt, chained, prompt_hash, response_hash)))
            entries.append((index, stored[0], salt))
            entries.extend((index + j, h, None) for j, h in enumerate(stored[1:], start=1))
            index += len(stored)
        conn.executemany(f"INSERT INTO {HASHES_TABLE} (idx, hash, salt) VALUES (?, ?, ?)", entries)
    return frontier.size


def append_leaves(conn: sqlite3.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add the leaves of rows just inserted (with their id and row_hash) in the caller's transaction.

    A database opened before the tree's migration has no tree yet: nothing is added, and the
    migration builds the leaves of all its rows when it runs. Raises LedgerError when the tree does
    not end where these rows begin (it was damaged)."""
    if not rows:
        return
    first = rows[0]["id"] - 1
    try:
        stored = conn.execute(f"SELECT max(idx) FROM {HASHES_TABLE}").fetchone()[0]
    except sqlite3.OperationalError as exc:
        if f"no such table: {HASHES_TABLE}" in str(exc):
            return
        raise
    if (0 if stored is None else stored + 1) != stored_hash_count(first):
        raise LedgerError(f"the Merkle tree does not end at row {first}; run `stillroom log verify`")
    written: dict[int, bytes] = {}
    entries: list[tuple[int, bytes, bytes | None]] = []
    for offset, row in enumerate(rows):
        n = first + offset
        salt = new_salt()
        leaf = leaf_hash(leaf_data(row["id"], salt, row["row_hash"], row["prompt_hash"], row["response_hash"]))
        needed = parent_indexes(n)
        missing = [i for i in needed if i not in written]
        if missing:
            written.update(_read_map(conn, missing))
        base = stored_hash_index(0, n)
        for j, h in enumerate(hashes_for_leaf(n, leaf, [written[i] for i in needed])):
            written[base + j] = h
            entries.append((base + j, h, None if j else salt))
    conn.executemany(f"INSERT INTO {HASHES_TABLE} (idx, hash, salt) VALUES (?, ?, ?)", entries)


def _read_map(conn: sqlite3.Connection, indexes: Sequence[int]) -> dict[int, bytes]:
    marks = ", ".join("?" for _ in indexes)
    found = dict(conn.execute(f"SELECT idx, hash FROM {HASHES_TABLE} WHERE idx IN ({marks})", list(indexes)))
    if len(found) != len(set(indexes)):
        absent = sorted(set(indexes) - set(found))
        raise LedgerError(f"the Merkle tree is missing stored hashes {absent[:5]}; run `stillroom log verify`")
    return found


def hash_reader(conn: sqlite3.Connection) -> HashReader:
    """A HashReader over the stored hashes of this connection's ledger."""
    def read(indexes: Sequence[int]) -> list[bytes]:
        if not indexes:
            return []
        found = _read_map(conn, indexes)
        return [found[i] for i in indexes]
    return read


def tree_size(conn: sqlite3.Connection) -> int:
    """The number of leaves in the stored tree (from the count of stored hashes)."""
    stored = conn.execute(f"SELECT max(idx) FROM {HASHES_TABLE}").fetchone()[0]
    count = 0 if stored is None else stored + 1
    n = count // 2
    while stored_hash_count(n) < count:
        n += 1
    if stored_hash_count(n) != count:
        raise LedgerError(f"the Merkle tree's stored hashes end at {count - 1}, which no tree size does; "
                          "run `stillroom log verify`")
    return n


def origin(conn: sqlite3.Connection) -> str:
    """This ledger's log origin (the first line of its checkpoints)."""
    found = conn.execute(f"SELECT origin FROM {LOG_TABLE} WHERE id = 1").fetchone()
    if not found:
        raise LedgerError("the ledger has no Merkle log origin; it was not migrated")
    return str(found[0])


def root(conn: sqlite3.Connection, size: int) -> bytes:
    """The root hash of the tree of the first `size` leaves."""
    return tree_hash(size, hash_reader(conn))


def prove_row(conn: sqlite3.Connection, generation_id: int, size: int) -> tuple[bytes, list[bytes]]:
    """Row `generation_id`'s leaf data (its salt included) and inclusion proof in the tree of `size`."""
    found = conn.execute(
        f"SELECT g.id, g.row_hash, g.prompt_hash, g.response_hash, m.salt FROM {GENERATIONS_TABLE} g "
        f"JOIN {HASHES_TABLE} m ON m.idx = ? WHERE g.id = ? AND m.salt IS NOT NULL",
        (stored_hash_index(0, generation_id - 1), generation_id)).fetchone() if generation_id >= 1 else None
    if not found:
        raise LedgerError(f"row {generation_id} is not in the ledger's Merkle tree")
    rid, chained, prompt_hash, response_hash, salt = found
    data = leaf_data(rid, salt, chained, prompt_hash, response_hash)
    return data, inclusion_proof(size, rid - 1, hash_reader(conn))


def prove_consistency(conn: sqlite3.Connection, old_size: int, new_size: int) -> list[bytes]:
    """The consistency proof from the tree of `old_size` leaves to that of `new_size`."""
    return consistency_proof(old_size, new_size, hash_reader(conn))


@dataclass(frozen=True)
class TreeCheck:
    """The outcome of checking the tree against the rows.

    ok: every row's leaf and every stored hash is what the rows give. leaves: the tree's size.
    root: its root hash (rebuilt from the rows). bad_id: the first row whose leaf disagrees.
    problem: a sentence saying what is wrong."""

    ok: bool
    leaves: int
    root: bytes | None = None
    bad_id: int | None = None
    problem: str | None = None


def verify_tree(conn: sqlite3.Connection, anchors: Mapping[int, bytes] | None = None,
                cancel: CancelToken = NEVER) -> TreeCheck | None:
    """Rebuild the tree from the rows (each row's hash recomputed from its columns) and compare
    every stored hash; `anchors` maps tree sizes to roots signed earlier (checkpoints), each of which
    the rebuilt tree must reproduce. Returns None when cancelled."""
    anchors = dict(anchors or {})
    size = tree_size(conn)
    frontier = Frontier()
    for row in _rows(conn, cancel):
        if row is None:
            return None
        n = frontier.size
        expected = n + 1
        if n >= size:
            return TreeCheck(False, size, None, row["id"],
                             f"row {row['id']} has no leaf in the Merkle tree: it was added outside Stillroom")
        base = stored_hash_index(0, n)
        salt_found = conn.execute(f"SELECT salt FROM {HASHES_TABLE} WHERE idx = ?", (base,)).fetchone()
        if salt_found is None or salt_found[0] is None:
            return TreeCheck(False, size, None, expected, f"leaf {n} (row {expected}) has no salt: the tree "
                             "was altered")
        leaf = leaf_hash(leaf_data(row["id"], salt_found[0], row_hash(row), row["prompt_hash"],
                                   row["response_hash"]))
        stored = frontier.append(leaf)
        found = dict(conn.execute(f"SELECT idx, hash FROM {HASHES_TABLE} WHERE idx >= ? AND idx < ?",
                                  (base, base + len(stored))).fetchall())
        if found.get(base) != leaf:
            if row["id"] != expected:
                problem = (f"leaf {n} of the Merkle tree commits to row {expected}, but the row in its place is "
                           f"row {row['id']}: rows were removed, inserted or renumbered")
            else:
                problem = (f"row {expected} does not match its leaf in the Merkle tree: the row was edited, "
                           "replaced or moved")
            return TreeCheck(False, size, None, expected, problem)
        if any(found.get(base + j) != h for j, h in enumerate(stored)):
            return TreeCheck(False, size, None, expected,
                             f"the Merkle tree's stored hashes disagree with the rows at row {expected}")
        if frontier.size in anchors and frontier.root() != anchors.pop(frontier.size):
            return TreeCheck(False, size, None, expected,
                             f"the tree of the first {frontier.size} rows no longer has the root its checkpoint "
                             "signed: rows before it were changed")
    if frontier.size < size:
        return TreeCheck(False, size, None, frontier.size + 1,
                         f"row {frontier.size + 1} is missing: the Merkle tree has {size} leaves but the ledger "
                         f"only {frontier.size} rows (rows were removed from the end)")
    if anchors:
        bigger = min(anchors)
        return TreeCheck(False, size, None, size + 1,
                         f"a checkpoint was signed at {bigger} rows but the ledger has only {size}: rows were removed")
    return TreeCheck(True, size, frontier.root())


def _rows(conn: sqlite3.Connection, cancel: CancelToken) -> Iterator[dict[str, Any] | None]:
    names = list(GENERATION_COLUMNS)
    last = 0
    while True:
        if cancel.cancelled:
            yield None
            return
        chunk = conn.execute(f"SELECT {_COLUMN_LIST} FROM {GENERATIONS_TABLE} WHERE id > ? ORDER BY id LIMIT ?",
                             (last, VERIFY_CHUNK)).fetchall()
        if not chunk:
            return
        for values in chunk:
            yield dict(zip(names, values))
        last = chunk[-1][0]
