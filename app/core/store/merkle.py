"""RFC 6962 / RFC 9162 Merkle tree hashing and proofs, over a flat array of stored hashes.

Leaf hash = SHA-256(0x00 || data); interior hash = SHA-256(0x01 || left || right); a tree of n
leaves splits at the largest power of two smaller than n. The hashes of all complete subtrees are
kept in one indexed array laid out as in Go's golang.org/x/mod/sumdb/tlog (`StoredHashIndex`): the
hashes written when leaf n is appended (its leaf hash, then the subtrees it completes) occupy
consecutive indexes, so appending is O(log n) and any root or proof needs O(log n) reads.

Proofs are lists of 32-byte hashes in the order of RFC 9162 section 2.1 (bottom-up), the same as
Go's `tlog.RecordProof` and `tlog.TreeProof`. Checking functions never trust their inputs: a wrong
length, size or index makes them return False, never raise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
MAX_TREE_SIZE = 1 << 62
MAX_PROOF_HASHES = 128

HashReader = Callable[[Sequence[int]], list[bytes]]
"""Reads the stored hashes at the given indexes, returning them in the same order."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def stored_hash_index(level: int, n: int) -> int:
    """Where the hash of the n-th complete subtree of 2**level leaves sits in the stored array."""
    for _ in range(level):
        n = 2 * n + 1
    index = 0
    while n > 0:
        index += n
        n >>= 1
    return index + level


def stored_hash_count(n: int) -> int:
    """How many hashes a tree of n leaves stores."""
    if n == 0:
        return 0
    count = stored_hash_index(0, n - 1) + 1
    i = n - 1
    while i & 1:
        count += 1
        i >>= 1
    return count


def trailing_ones(n: int) -> int:
    """The number of trailing 1 bits of n: how many subtrees leaf n completes."""
    return ((n ^ (n + 1)).bit_length()) - 1


def parent_indexes(n: int) -> list[int]:
    """Stored indexes of the left siblings that leaf n (0-based) is combined with, lowest level first."""
    return [stored_hash_index(level, (n >> level) - 1) for level in range(trailing_ones(n))]


def hashes_for_leaf(n: int, leaf: bytes, siblings: Sequence[bytes]) -> list[bytes]:
    """The hashes stored when leaf n is appended: its leaf hash, then the subtree hashes it
    completes. `siblings` are the hashes at parent_indexes(n), in that order."""
    out = [leaf]
    node = leaf
    for sibling in siblings:
        node = node_hash(sibling, node)
        out.append(node)
    return out


class Frontier:
    """The right edge of a tree being built leaf by leaf in memory: the roots of its complete
    subtrees, largest first. Used to build or rebuild a whole tree in one pass."""

    def __init__(self) -> None:
        self.size = 0
        self.stack: list[bytes] = []

    def append(self, leaf: bytes) -> list[bytes]:
        """Add a leaf hash; returns the hashes to store for it (see hashes_for_leaf)."""
        out = [leaf]
        node = leaf
        for _ in range(trailing_ones(self.size)):
            node = node_hash(self.stack.pop(), node)
            out.append(node)
        self.stack.append(node)
        self.size += 1
        return out

    def root(self) -> bytes:
        """The root hash of the tree so far (EMPTY_ROOT when empty)."""
        if not self.stack:
            return EMPTY_ROOT
        node = self.stack[-1]
        for left in reversed(self.stack[:-1]):
            node = node_hash(left, node)
        return node


def _subtree_indexes(lo: int, hi: int, need: list[int]) -> None:
    while lo < hi:
        k = _split(hi - lo + 1)
        level = k.bit_length() - 1
        need.append(stored_hash_index(level, lo >> level))
        lo += k


def _subtree_hash(lo: int, hi: int, hashes: list[bytes], pos: int) -> tuple[bytes, int]:
    parts: list[bytes] = []
    while lo < hi:
        lo += _split(hi - lo + 1)
        parts.append(hashes[pos])
        pos += 1
    node = parts[-1]
    for left in reversed(parts[:-1]):
        node = node_hash(left, node)
    return node, pos


def range_indexes(lo: int, hi: int) -> list[int]:
    """The stored indexes whose hashes make up the subtree of leaves lo..hi-1 (see range_hash)."""
    need: list[int] = []
    _subtree_indexes(lo, hi, need)
    return need


def range_hash(lo: int, hi: int, hashes: list[bytes]) -> bytes:
    """The RFC 6962 hash of leaves lo..hi-1 from the hashes at range_indexes(lo, hi), in that order."""
    return _subtree_hash(lo, hi, hashes, 0)[0]


def tree_hash(n: int, read: HashReader) -> bytes:
    """The root hash of the first n leaves (RFC 6962 MTH), from stored hashes."""
    if n == 0:
        return EMPTY_ROOT
    need: list[int] = []
    _subtree_indexes(0, n, need)
    return _subtree_hash(0, n, read(need), 0)[0]


def _leaf_proof_indexes(lo: int, hi: int, n: int, need: list[int]) -> None:
    if lo + 1 == hi:
        return
    k = _split(hi - lo)
    if n < lo + k:
        _leaf_proof_indexes(lo, lo + k, n, need)
        _subtree_indexes(lo + k, hi, need)
    else:
        _subtree_indexes(lo, lo + k, need)
        _leaf_proof_indexes(lo + k, hi, n, need)


def _leaf_proof(lo: int, hi: int, n: int, hashes: list[bytes], pos: int) -> tuple[list[bytes], int]:
    if lo + 1 == hi:
        return [], pos
    k = _split(hi - lo)
    if n < lo + k:
        proof, pos = _leaf_proof(lo, lo + k, n, hashes, pos)
        sibling, pos = _subtree_hash(lo + k, hi, hashes, pos)
    else:
        sibling, pos = _subtree_hash(lo, lo + k, hashes, pos)
        proof, pos = _leaf_proof(lo + k, hi, n, hashes, pos)
    proof.append(sibling)
    return proof, pos


def inclusion_proof(size: int, index: int, read: HashReader) -> list[bytes]:
    """The inclusion proof of leaf `index` (0-based) in the tree of the first `size` leaves."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    need: list[int] = []
    _leaf_proof_indexes(0, size, index, need)
    return _leaf_proof(0, size, index, read(need), 0)[0] if need else []


def _run_leaf_proof(proof: Sequence[bytes], lo: int, hi: int, n: int, leaf: bytes) -> bytes | None:
    if lo + 1 == hi:
        return leaf if not proof else None
    if not proof:
        return None
    k = _split(hi - lo)
    if n < lo + k:
        inner = _run_leaf_proof(proof[:-1], lo, lo + k, n, leaf)
        return None if inner is None else node_hash(inner, proof[-1])
    inner = _run_leaf_proof(proof[:-1], lo + k, hi, n, leaf)
    return None if inner is None else node_hash(proof[-1], inner)


def check_inclusion(proof: Sequence[bytes], size: int, root: bytes, index: int, leaf: bytes) -> bool:
    """True when `proof` shows the leaf hash `leaf` at `index` in the tree of `size` leaves with `root`."""
    if not (0 <= index < size <= MAX_TREE_SIZE) or len(proof) > MAX_PROOF_HASHES:
        return False
    if any(len(h) != HASH_SIZE for h in proof) or len(leaf) != HASH_SIZE:
        return False
    return _run_leaf_proof(list(proof), 0, size, index, leaf) == root


def _tree_proof_indexes(lo: int, hi: int, n: int, need: list[int]) -> None:
    if n == hi:
        if lo != 0:
            _subtree_indexes(lo, hi, need)
        return
    k = _split(hi - lo)
    if n <= lo + k:
        _tree_proof_indexes(lo, lo + k, n, need)
        _subtree_indexes(lo + k, hi, need)
    else:
        _subtree_indexes(lo, lo + k, need)
        _tree_proof_indexes(lo + k, hi, n, need)


def _tree_proof(lo: int, hi: int, n: int, hashes: list[bytes], pos: int) -> tuple[list[bytes], int]:
    if n == hi:
        if lo == 0:
            return [], pos
        node, pos = _subtree_hash(lo, hi, hashes, pos)
        return [node], pos
    k = _split(hi - lo)
    if n <= lo + k:
        proof, pos = _tree_proof(lo, lo + k, n, hashes, pos)
        node, pos = _subtree_hash(lo + k, hi, hashes, pos)
    else:
        node, pos = _subtree_hash(lo, lo + k, hashes, pos)
        proof, pos = _tree_proof(lo + k, hi, n, hashes, pos)
    proof.append(node)
    return proof, pos


def consistency_proof(old_size: int, new_size: int, read: HashReader) -> list[bytes]:
    """The proof that the tree of `new_size` leaves extends the tree of its first `old_size` leaves."""
    if not 1 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}: "
                         "the old size must be at least 1 and at most the new size")
    need: list[int] = []
    _tree_proof_indexes(0, new_size, old_size, need)
    return _tree_proof(0, new_size, old_size, read(need), 0)[0] if need else []


def _run_tree_proof(proof: Sequence[bytes], lo: int, hi: int, n: int,
                    old: bytes) -> tuple[bytes, bytes] | None:
    if n == hi:
        if lo == 0:
            return (old, old) if not proof else None
        return (proof[0], proof[0]) if len(proof) == 1 else None
    if not proof:
        return None
    k = _split(hi - lo)
    if n <= lo + k:
        inner = _run_tree_proof(proof[:-1], lo, lo + k, n, old)
        return None if inner is None else (inner[0], node_hash(inner[1], proof[-1]))
    inner = _run_tree_proof(proof[:-1], lo + k, hi, n, old)
    return None if inner is None else (node_hash(proof[-1], inner[0]), node_hash(proof[-1], inner[1]))


def check_consistency(proof: Sequence[bytes], new_size: int, new_root: bytes, old_size: int,
                      old_root: bytes) -> bool:
    """True when `proof` shows the tree (`new_size`, `new_root`) extends (`old_size`, `old_root`)."""
    if not (1 <= old_size <= new_size <= MAX_TREE_SIZE) or len(proof) > MAX_PROOF_HASHES:
        return False
    if any(len(h) != HASH_SIZE for h in proof):
        return False
    result = _run_tree_proof(list(proof), 0, new_size, old_size, old_root)
    return result is not None and result == (old_root, new_root)
