"""Near-duplicate candidates: MinHash signatures with LSH banding, computed for a batch of texts
at once with numpy, and a compact index of the ledger's responses.

Texts are first made `loose` (NFKC, case folded, punctuation and runs of white space turned into
one space), so edits of case, punctuation and spacing do not change the words. A text's shingles
are its word bigrams (and the last word with an end mark, so a one-word text has one). Words are
hashed with CRC-32 (deterministic, unlike Python's hash), a shingle is the two 32-bit word hashes
side by side in 64 bits, and each of NUM_PERM multiply-shift hash functions gives one minimum per
text (np.minimum.reduceat over the text's contiguous shingles). The signature is cut into BANDS bands of ROWS values; two texts are
candidates when any band is equal, which happens with probability 1 - (1 - J^ROWS)^BANDS for
Jaccard similarity J (J 0.7: 0.99, J 0.8: 0.9998, J 0.3: 0.12).

Truncated texts keep their beginning; they are also found by a key of their first PREFIX_WORDS
words. The index keeps only integers, each band's keys sorted with their ledger ids for binary
search, and the prefix keys likewise: 8 * (2 * BANDS + 2) = 272 bytes per generation.
"""

from __future__ import annotations

import unicodedata
import zlib
from dataclasses import dataclass
from itertools import chain

import numpy as np

NUM_PERM = 64
BANDS = 16
ROWS = NUM_PERM // BANDS
PREFIX_WORDS = 8
MAX_BUCKET = 64  # ledger ids looked at per equal band or prefix key (a very common text)
FOLD_LIMIT = 0x20000  # the Basic and Supplementary Multilingual Planes hold every punctuation and symbol
PREFIX_WEIGHT = 8  # a shared beginning counts as much as this many equal bands
_RNG = np.random.default_rng(0x5717)  # fixed: signatures are the same in every run
_PERM_A = _RNG.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_PERM_B = _RNG.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64)
_RANK = _RNG.integers(1, 2**63, size=PREFIX_WORDS, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_END = np.uint64(0x9E3779B9)  # the word after a text's last word
_BAND_MIX = np.uint64(0xBF58476D1CE4E5B9)
_SHIFT = np.uint64(32)
EMPTY = np.uint64(0)  # band key of a text without words (never indexed)


def _fold_table() -> dict[int, str]:
    """Every punctuation, symbol, control and format character (and "_") -> a space."""
    table = {ord("_"): " "}
    for code in range(FOLD_LIMIT):
        category = unicodedata.category(chr(code))
        if category[0] in "PS" or category in ("Cc", "Cf"):
            table[code] = " "
    return table


_FOLD: dict[int, str] = {}


def loose(text: str) -> str:
    """The text with case, punctuation and spacing differences removed (words joined by one space)."""
    if not _FOLD:
        _FOLD.update(_fold_table())
    return " ".join(unicodedata.normalize("NFKC", text).casefold().translate(_FOLD).split())


@dataclass
class Sketches:
    """Band keys (n, BANDS), prefix keys (n,) and word counts (n,) of a batch of loose texts."""

    bands: np.ndarray
    prefix: np.ndarray
    words: np.ndarray


def sketch(texts: list[str]) -> Sketches:
    """Band and prefix keys of `texts` (already loose: words joined by single spaces)."""
    n = len(texts)
    bands = np.full((n, BANDS), EMPTY, dtype=np.uint64)
    prefix = np.zeros(n, dtype=np.uint64)
    hashed = [list(map(zlib.crc32, text.encode("utf-8").split())) for text in texts]
    counts = np.fromiter(map(len, hashed), dtype=np.int64, count=n)
    total = int(counts.sum())
    if total == 0:
        return Sketches(bands, prefix, counts)
    words = np.fromiter(chain.from_iterable(hashed), dtype=np.uint64, count=total)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    present = np.flatnonzero(counts)
    first_word = starts[present]
    # Shingle i: word i with the next word of the same text, or with the end mark (32-bit words).
    following = np.empty_like(words)
    following[:-1] = words[1:]
    following[(first_word + counts[present] - 1)] = _END
    shingles = (words << _SHIFT) | following
    minima = np.empty((present.size, NUM_PERM), dtype=np.uint64)
    for j in range(NUM_PERM):
        minima[:, j] = np.minimum.reduceat((shingles * _PERM_A[j] + _PERM_B[j]) >> _SHIFT, first_word)
    keyed = np.zeros((present.size, BANDS), dtype=np.uint64)
    for r in range(ROWS):
        keyed = keyed * _BAND_MIX + minima[:, r::ROWS]
    keyed[keyed == EMPTY] = np.uint64(1)
    bands[present] = keyed
    rank = np.arange(total) - np.repeat(starts, counts)
    early = rank < PREFIX_WORDS
    mixed = (words + np.uint64(1)) * _RANK[np.minimum(rank, PREFIX_WORDS - 1)]
    prefix[present] = np.add.reduceat(np.where(early, mixed, np.uint64(0)), first_word)
    prefix[counts < PREFIX_WORDS] = 0
    return Sketches(bands, prefix, counts)


class LedgerIndex:
    """Band and prefix keys of ledger responses, added in chunks, then frozen for lookups."""

    def __init__(self) -> None:
        self._ids: list[np.ndarray] = []
        self._bands: list[np.ndarray] = []
        self._prefix: list[np.ndarray] = []
        self.size = 0

    def add(self, ids: list[int], texts: list[str]) -> None:
        """Index the loose responses `texts` of generations `ids`."""
        sketches = sketch(texts)
        self._ids.append(np.asarray(ids, dtype=np.int64))
        self._bands.append(sketches.bands)
        self._prefix.append(sketches.prefix)
        self.size += len(ids)

    def freeze(self) -> None:
        """Sort each band (and the prefixes) for binary search; call once after the last add."""
        ids = np.concatenate(self._ids) if self._ids else np.zeros(0, dtype=np.int64)
        bands = np.concatenate(self._bands) if self._bands else np.zeros((0, BANDS), dtype=np.uint64)
        prefix = np.concatenate(self._prefix) if self._prefix else np.zeros(0, dtype=np.uint64)
        self._ids, self._bands, self._prefix = [], [], []
        self.band_keys: list[np.ndarray] = []
        self.band_ids: list[np.ndarray] = []
        for b in range(BANDS):
            column = bands[:, b]
            order = np.argsort(column, kind="stable")
            keep = column[order] != EMPTY
            self.band_keys.append(column[order][keep])
            self.band_ids.append(ids[order][keep])
        del bands
        order = np.argsort(prefix, kind="stable")
        keep = prefix[order] != 0
        self.prefix_keys = prefix[order][keep]
        self.prefix_ids = ids[order][keep]

    def candidates(self, sketches: Sketches, limit: int) -> list[list[int]]:
        """For each sketched text, up to `limit` ledger ids: those sharing the most bands first,
        a shared beginning counting as PREFIX_WEIGHT bands."""
        n = sketches.bands.shape[0]
        hits: list[dict[int, int]] = [{} for _ in range(n)]
        for b in range(BANDS):
            self._collect(self.band_keys[b], self.band_ids[b], sketches.bands[:, b], hits, 1)
        self._collect(self.prefix_keys, self.prefix_ids, sketches.prefix, hits, PREFIX_WEIGHT)
        return [sorted(found, key=lambda i: (-found[i], i))[:limit] for found in hits]

    @staticmethod
    def _collect(keys: np.ndarray, ids: np.ndarray, queries: np.ndarray, hits: list[dict[int, int]],
                 weight: int) -> None:
        lo = np.searchsorted(keys, queries, side="left")
        hi = np.searchsorted(keys, queries, side="right")
        for q in np.flatnonzero((hi > lo) & (queries != 0)):
            found = hits[q]
            for generation in ids[lo[q]:min(hi[q], lo[q] + MAX_BUCKET)].tolist():
                found[generation] = found.get(generation, 0) + weight
