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

Truncated texts keep their beginning; they are also found by their opening windows (words 0-7,
8-15, 16-23, 24-31, each hashed with its place): templated outputs share the first window, not
the later ones. Texts that meet in a band or a window by chance (batch outputs share sentences
and openings) are then dropped by the Jaccard similarity their full signatures estimate, and what
is left is ranked by it. The index keeps only integers: each band's keys sorted with their ledger
ids for binary search, the window keys likewise, and the signatures (8 * 2 * (BANDS + WINDOWS) +
4 * NUM_PERM = 576 bytes per generation).
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
WINDOWS = 4  # opening windows of PREFIX_WORDS words kept per text (its first 32 words)
MAX_BUCKET = 128  # ledger ids looked at per equal band or prefix key (a very common text)
FOLD_LIMIT = 0x20000  # the Basic and Supplementary Multilingual Planes hold every punctuation and symbol
ESTIMATE_CHUNK = 50_000  # pairs whose signatures are compared at once (50k x 64 x 4 B per side)
SIGNATURE_MIN = 0.5  # estimated Jaccard similarity a candidate needs...
TRUNCATION_MIN = 0.2  # ...or this much with a shared beginning (a prefix keeping a share s has J ~ s)
_RNG = np.random.default_rng(0x5717)  # fixed: signatures are the same in every run
_PERM_A = _RNG.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_PERM_B = _RNG.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64)
_RANK = _RNG.integers(1, 2**63, size=PREFIX_WORDS, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_WINDOW_SALT = _RNG.integers(1, 2**63, size=WINDOWS, dtype=np.uint64)
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
    """Band keys (n, BANDS), opening-window keys (n, WINDOWS), word counts (n,) and signatures
    (n, NUM_PERM) of a batch of loose texts."""

    bands: np.ndarray
    prefix: np.ndarray
    words: np.ndarray
    minima: np.ndarray  # (n, NUM_PERM) uint32, the signatures themselves (zero for a text without words)


def sketch(texts: list[str]) -> Sketches:
    """Band and prefix keys of `texts` (already loose: words joined by single spaces)."""
    n = len(texts)
    bands = np.full((n, BANDS), EMPTY, dtype=np.uint64)
    prefix = np.zeros((n, WINDOWS), dtype=np.uint64)
    signatures = np.zeros((n, NUM_PERM), dtype=np.uint32)
    hashed = [list(map(zlib.crc32, text.encode("utf-8").split())) for text in texts]
    counts = np.fromiter(map(len, hashed), dtype=np.int64, count=n)
    total = int(counts.sum())
    if total == 0:
        return Sketches(bands, prefix, counts, signatures)
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
    signatures[present] = minima
    # Opening windows: words [0, 8), [8, 16), ... each hashed with its place, kept when complete.
    rank = np.arange(total) - np.repeat(starts, counts)
    window = rank // PREFIX_WORDS
    early = np.flatnonzero(window < WINDOWS)
    doc = np.repeat(np.arange(n), counts)[early]
    mixed = (words[early] + np.uint64(1)) * _RANK[rank[early] % PREFIX_WORDS] + _WINDOW_SALT[window[early]]
    flat = np.zeros(n * WINDOWS, dtype=np.uint64)
    np.add.at(flat, doc * WINDOWS + window[early], mixed)
    prefix = flat.reshape(n, WINDOWS)
    prefix[counts[:, None] < PREFIX_WORDS * (np.arange(WINDOWS)[None, :] + 1)] = 0
    return Sketches(bands, prefix, counts, signatures)


class LedgerIndex:
    """Band and prefix keys of ledger responses, added in chunks, then frozen for lookups."""

    def __init__(self) -> None:
        self._ids: list[np.ndarray] = []
        self._bands: list[np.ndarray] = []
        self._prefix: list[np.ndarray] = []
        self._signatures: list[np.ndarray] = []
        self.size = 0

    def add(self, ids: list[int], texts: list[str]) -> None:
        """Index the loose responses `texts` of generations `ids`."""
        sketches = sketch(texts)
        self._ids.append(np.asarray(ids, dtype=np.int64))
        self._bands.append(sketches.bands)
        self._prefix.append(sketches.prefix)
        self._signatures.append(sketches.minima)
        self.size += len(ids)

    def freeze(self) -> None:
        """Sort each band (and the prefixes) for binary search; call once after the last add."""
        ids = np.concatenate(self._ids) if self._ids else np.zeros(0, dtype=np.int64)
        bands = np.concatenate(self._bands) if self._bands else np.zeros((0, BANDS), dtype=np.uint64)
        windows = np.concatenate(self._prefix) if self._prefix else np.zeros((0, WINDOWS), dtype=np.uint64)
        prefix = windows.reshape(-1)
        prefix_ids = np.repeat(ids, WINDOWS)
        del windows
        self.ids = ids  # ascending: generations are added in id order
        self.signatures = (np.concatenate(self._signatures) if self._signatures
                           else np.zeros((0, NUM_PERM), dtype=np.uint32))
        self._ids, self._bands, self._prefix, self._signatures = [], [], [], []
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
        self.prefix_ids = prefix_ids[order][keep]

    def candidates(self, sketches: Sketches, limit: int) -> list[list[int]]:
        """For each sketched text, up to `limit` ledger ids, most similar first by the Jaccard
        similarity their signatures estimate. A generation is a candidate when it shares a band and
        the estimate reaches SIGNATURE_MIN, or shares the beginning and the estimate reaches
        TRUNCATION_MIN. Vectorized over the batch."""
        n = sketches.bands.shape[0]
        found: list[list[int]] = [[] for _ in range(n)]
        pairs = self._pairs(sketches)
        if pairs is None:
            return found
        query, generation, prefixed = pairs
        estimate = np.empty(query.size, dtype=np.float32)
        rows = np.searchsorted(self.ids, generation)
        for start in range(0, query.size, ESTIMATE_CHUNK):
            part = slice(start, start + ESTIMATE_CHUNK)
            estimate[part] = (sketches.minima[query[part]] == self.signatures[rows[part]]).mean(axis=1)
        keep = (estimate >= SIGNATURE_MIN) | (prefixed & (estimate >= TRUNCATION_MIN))
        query, generation, estimate = query[keep], generation[keep], estimate[keep]
        order = np.lexsort((generation, -estimate, query))
        query, generation = query[order], generation[order]
        starts = np.flatnonzero(np.r_[True, query[1:] != query[:-1]]) if query.size else np.zeros(0, np.int64)
        rank = np.arange(query.size) - np.repeat(starts, np.diff(np.r_[starts, query.size]))
        for q, gid in zip(query[rank < limit].tolist(), generation[rank < limit].tolist()):
            found[q].append(gid)
        return found

    def _pairs(self, sketches: Sketches) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Distinct (text, generation) pairs that share a band or the beginning, and which share the beginning."""
        n = sketches.bands.shape[0]
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        columns = [(self.band_keys[b], self.band_ids[b], sketches.bands[:, b], False) for b in range(BANDS)]
        columns += [(self.prefix_keys, self.prefix_ids, sketches.prefix[:, w], True) for w in range(WINDOWS)]
        for keys, ids, wanted, is_prefix in columns:
            lo = np.searchsorted(keys, wanted, side="left")
            hi = np.searchsorted(keys, wanted, side="right")
            counts = np.where(wanted != 0, np.minimum(hi - lo, MAX_BUCKET), 0)
            total = int(counts.sum())
            if total == 0:
                continue
            owner = np.repeat(np.arange(n), counts)
            offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            parts.append((owner, ids[np.repeat(lo, counts) + offset], np.full(total, is_prefix)))
        if not parts:
            return None
        query = np.concatenate([p[0] for p in parts])
        generation = np.concatenate([p[1] for p in parts])
        prefixed = np.concatenate([p[2] for p in parts])
        order = np.lexsort((~prefixed, generation, query))  # a pair's prefix entry first
        query, generation, prefixed = query[order], generation[order], prefixed[order]
        first = np.r_[True, (query[1:] != query[:-1]) | (generation[1:] != generation[:-1])]
        return query[first], generation[first], prefixed[first]
