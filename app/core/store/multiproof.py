"""One proof that many leaves are in an RFC 6962 tree: the deduplicated set of subtree hashes.

Walking the tree top-down as RFC 6962 splits it (at the largest power of two smaller than the
range), a range holding none of the proven leaves is given as its hash (one "node"); a range of one
proven leaf is that leaf; any other range is split. The nodes are listed in the order the walk meets
them, left to right, so the list is canonical and no hash appears twice. For k leaves of a tree of n
the proof holds at most k * log2(n / k) + log2(n) nodes, and far fewer when the leaves are
contiguous (a run of leaves needs about 2 * log2(n) nodes in all), against k * log2(n) hashes for
k separate inclusion proofs. The checking side never trusts its input: wrong counts, sizes or
orders return None, never raise.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

from app.core.store.merkle import HASH_SIZE, MAX_TREE_SIZE, node_hash, range_hash, range_indexes

ReadChunk = Callable[[Sequence[int]], list[bytes]]
READ_CHUNK = 900


def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def proof_ranges(size: int, indexes: Sequence[int]) -> list[tuple[int, int]]:
    """The leaf ranges (lo, hi) whose hashes make the multiproof of the sorted, distinct `indexes`."""
    if any(b <= a for a, b in zip(indexes, indexes[1:])) or (indexes and not 0 <= indexes[0] <= indexes[-1] < size):
        raise ValueError(f"leaf indexes must be distinct, sorted and below the tree size {size}")
    out: list[tuple[int, int]] = []
    stack = [(0, size, 0, len(indexes))]
    while stack:  # depth first, left before right: pushed right first
        lo, hi, i, j = stack.pop()
        if i == j:
            out.append((lo, hi))
            continue
        if hi - lo == 1:
            continue
        k = _split(hi - lo)
        m = bisect.bisect_left(indexes, lo + k, i, j)
        stack.append((lo + k, hi, m, j))
        stack.append((lo, lo + k, i, m))
    return out


def prove_leaves(size: int, indexes: Sequence[int], read: ReadChunk) -> list[bytes]:
    """The multiproof of leaves `indexes` (sorted, distinct, 0-based) in the tree of `size` leaves.

    `read` returns the stored hashes at the indexes asked for (called with at most READ_CHUNK)."""
    ranges = proof_ranges(size, indexes)
    wanted = [range_indexes(lo, hi) for lo, hi in ranges]
    flat = sorted({i for need in wanted for i in need})
    found: dict[int, bytes] = {}
    for start in range(0, len(flat), READ_CHUNK):
        chunk = flat[start:start + READ_CHUNK]
        found.update(zip(chunk, read(chunk)))
    return [range_hash(lo, hi, [found[i] for i in need]) for (lo, hi), need in zip(ranges, wanted)]


def root_from_leaves(size: int, indexes: Sequence[int], leaves: Sequence[bytes],
                     nodes: Sequence[bytes]) -> bytes | None:
    """The root the multiproof `nodes` gives for leaf hashes `leaves` at `indexes` (sorted,
    distinct), or None when the proof does not fit (too few or too many nodes, bad sizes)."""
    if not (0 < size <= MAX_TREE_SIZE) or len(indexes) != len(leaves) or not indexes:
        return None
    if any(b <= a for a, b in zip(indexes, indexes[1:])) or not 0 <= indexes[0] <= indexes[-1] < size:
        return None
    if len(nodes) > len(indexes) * 64 + 64 or any(len(h) != HASH_SIZE for h in nodes):
        return None
    if any(len(h) != HASH_SIZE for h in leaves):
        return None
    position = 0

    def walk(lo: int, hi: int, i: int, j: int) -> bytes | None:
        nonlocal position
        if i == j:
            if position >= len(nodes):
                return None
            position += 1
            return nodes[position - 1]
        if hi - lo == 1:
            return leaves[i]
        k = _split(hi - lo)
        m = bisect.bisect_left(indexes, lo + k, i, j)
        left = walk(lo, lo + k, i, m)
        if left is None:
            return None
        right = walk(lo + k, hi, m, j)
        return None if right is None else node_hash(left, right)

    top = walk(0, size, 0, len(indexes))
    return top if top is not None and position == len(nodes) else None
