"""Style features of a response, in the spirit of the work on model idiosyncrasies (word choice,
opening words, markdown structure) and of the hashed-n-gram baselines: hashed character n-grams
(1 to 5 characters of the raw text, case, spaces and line breaks kept, with a start and an end
mark so the first and last characters count as such), hashed word unigrams and bigrams, hashed
opening words and a few markdown-structure counts.

Everything is stateless (feature hashing, no vocabulary), so a saved model needs only its weights,
and the same text always maps to the same vector. Every block is L2-normalised on its own and
weighted, then the blocks are put side by side in one sparse row.

The hashing is vectorised: a batch of texts becomes one array of code points, every n-gram and
word is hashed with 64-bit integer arithmetic over that array (no Python work per n-gram), and the
counts go straight into a sparse matrix. Only the markdown cues run a regular expression per text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

CHAR_FEATURES = 1 << 16
WORD_FEATURES = 1 << 15
OPENING_FEATURES = 1 << 12
CHAR_NGRAMS = (1, 5)
OPENING_WORDS = 3
MAX_CHARS = 2000  # a response is judged by its first MAX_CHARS characters (bounded time per row)
BATCH_CHARS = 1 << 20  # texts are hashed in groups of at most this many characters (bounded memory)
BLOCK_WEIGHTS = {"char": 1.0, "word": 0.8, "opening": 0.6, "markdown": 0.6}
FEATURE_VERSION = "2"
START, END = "\x02", "\x03"  # the marks around a text for its character n-grams
MARKDOWN_CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("heading", re.compile(r"^\s{0,3}#{1,6}\s", re.MULTILINE)),
    ("bullet", re.compile(r"^\s*[-*+]\s", re.MULTILINE)),
    ("numbered", re.compile(r"^\s*\d+[.)]\s", re.MULTILINE)),
    ("bold", re.compile(r"\*\*[^*\n]+\*\*")),
    ("code_fence", re.compile(r"^\s*```", re.MULTILINE)),
    ("inline_code", re.compile(r"`[^`\n]+`")),
    ("table", re.compile(r"^\s*\|.*\|\s*$", re.MULTILINE)),
    ("blank_line", re.compile(r"\n\s*\n")),
    ("colon_end", re.compile(r":\s*$", re.MULTILINE)),
    ("emoji", re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF]")),
)
MARKDOWN_DIM = len(MARKDOWN_CUES) + 4
FEATURE_DIM = CHAR_FEATURES + WORD_FEATURES + OPENING_FEATURES + MARKDOWN_DIM

_BMP = 1 << 16
_WORD_CHAR = np.array([chr(c).isalnum() or c == 95 for c in range(_BMP)], dtype=bool)  # \w in the BMP
_SPACE = np.array([chr(c).isspace() for c in range(_BMP)], dtype=bool)
_LETTER = np.array([chr(c).isalpha() for c in range(_BMP)], dtype=bool)
_UPPER = np.array([chr(c).isupper() for c in range(_BMP)], dtype=bool)
_PRIME = np.uint64(1_000_003)
_MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: multiply, keep the top bits
_POWERS = np.cumprod(np.r_[np.uint64(1), np.full(MAX_CHARS + 2, _PRIME, dtype=np.uint64)], dtype=np.uint64)


def _clip(text: str) -> str:
    return (text or "")[:MAX_CHARS]


def _bucket(hashes: np.ndarray, salt: int, bits: int) -> np.ndarray:
    """Spread 64-bit hashes (salted per feature kind) over 2**bits columns."""
    mixed = (hashes ^ np.uint64(salt * 0x5851F42D4C957F2D & 0xFFFFFFFFFFFFFFFF)) * _MIX
    return (mixed >> np.uint64(64 - bits)).astype(np.int64)


def _codepoints(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All texts' code points in one array (uint64), and where each text starts (n + 1 offsets)."""
    joined = "".join(texts).encode("utf-32-le", errors="surrogatepass")
    points = np.frombuffer(joined, dtype=np.uint32).astype(np.uint64)
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in texts], out=offsets[1:])
    return points, offsets


def _lookup(table: np.ndarray, points: np.ndarray) -> np.ndarray:
    inside = points < _BMP
    return np.where(inside, table[np.minimum(points, _BMP - 1).astype(np.int64)], False)


def _counts(rows: np.ndarray, cols: np.ndarray, n: int, width: int):  # noqa: ANN202 - scipy CSR
    """Row-wise L2-normalised counts of (row, column) pairs, built straight into CSR form."""
    from scipy import sparse

    keys, counts = np.unique(rows.astype(np.int64) * width + cols, return_counts=True)
    key_rows = keys // width
    data = counts.astype(np.float32)
    norms = np.sqrt(np.bincount(key_rows, weights=data.astype(np.float64) ** 2, minlength=n))
    data /= norms[key_rows].astype(np.float32)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(key_rows, minlength=n), out=indptr[1:])
    return sparse.csr_matrix((data, (keys % width).astype(np.int32), indptr), shape=(n, width))


def char_ngrams(texts: Sequence[str]):  # noqa: ANN201 - scipy CSR
    """Hashed counts of the character n-grams (CHAR_NGRAMS) of each marked text."""
    points, offsets = _codepoints([f"{START}{t}{END}" for t in texts])
    ends = np.repeat(offsets[1:], np.diff(offsets))
    rows_all = np.repeat(np.arange(len(texts)), np.diff(offsets))
    positions = np.arange(len(points))
    padded = np.r_[points, np.zeros(CHAR_NGRAMS[1], dtype=np.uint64)]
    hashes = np.zeros(len(points), dtype=np.uint64)
    rows, cols = [], []
    for size in range(1, CHAR_NGRAMS[1] + 1):
        hashes = hashes * _PRIME + padded[size - 1:size - 1 + len(points)]
        if size >= CHAR_NGRAMS[0]:
            valid = positions + size <= ends
            rows.append(rows_all[valid])
            cols.append(_bucket(hashes[valid], size, 16))
    return _counts(np.concatenate(rows), np.concatenate(cols), len(texts), CHAR_FEATURES)


def word_tokens(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each lower-cased text's tokens (runs of word characters, or one other non-space character),
    as (64-bit hash, row) arrays in text order."""
    points, offsets = _codepoints([t.lower() + " " for t in texts])  # the space keeps texts apart
    word = _lookup(_WORD_CHAR, points)
    in_token = ~_lookup(_SPACE, points)
    previous_word = np.r_[False, word[:-1]]
    starts = in_token & (~word | ~previous_word)
    index = np.flatnonzero(in_token)
    token_of = np.cumsum(starts[index]) - 1
    first = index[starts[index]]
    offset = np.minimum(index - first[token_of], MAX_CHARS + 1)
    hashes = np.add.reduceat(points[index] * _POWERS[offset], np.flatnonzero(starts[index])) if len(index) else \
        np.zeros(0, dtype=np.uint64)
    rows = np.searchsorted(offsets, first, side="right") - 1
    return hashes.astype(np.uint64), rows


def word_features(hashes: np.ndarray, rows: np.ndarray, n: int):  # noqa: ANN201 - scipy CSR
    """Hashed counts of word unigrams and bigrams (bigrams within one text)."""
    same = rows[1:] == rows[:-1]
    pairs = hashes[:-1][same] * _PRIME + hashes[1:][same] if len(hashes) else np.zeros(0, dtype=np.uint64)
    all_rows = np.r_[rows, rows[:-1][same]]
    cols = np.r_[_bucket(hashes, 1, 15), _bucket(pairs, 2, 15)]
    return _counts(all_rows, cols, n, WORD_FEATURES)


def opening_features(hashes: np.ndarray, rows: np.ndarray, n: int):  # noqa: ANN201 - scipy CSR
    """The first OPENING_WORDS tokens of each text, tagged with their position; one 'empty' column
    for a text without tokens."""
    first = np.searchsorted(rows, np.arange(n))
    position = np.arange(len(rows)) - first[rows] if len(rows) else np.zeros(0, dtype=np.int64)
    keep = position < OPENING_WORDS
    tagged = hashes[keep] + position[keep].astype(np.uint64) * np.uint64(0x632BE59BD9B4E019)
    empty = np.setdiff1d(np.arange(n), rows)
    return _counts(np.r_[rows[keep], empty], np.r_[_bucket(tagged, 3, 12), np.zeros(len(empty), dtype=np.int64)],
                   n, OPENING_FEATURES)


def markdown_structure(texts: Sequence[str]) -> np.ndarray:
    """Per text: log(1 + count) of each markdown cue, then log length, lines, mean line length and
    the share of upper-case letters."""
    rows = np.zeros((len(texts), MARKDOWN_DIM), dtype=np.float64)
    for j, (_, pattern) in enumerate(MARKDOWN_CUES):
        rows[:, j] = np.log1p([len(pattern.findall(t)) for t in texts])
    points, offsets = _codepoints(texts)
    owner = np.repeat(np.arange(len(texts)), np.diff(offsets))
    letters = np.bincount(owner, weights=_lookup(_LETTER, points).astype(np.float64), minlength=len(texts))
    upper = np.bincount(owner, weights=_lookup(_UPPER, points).astype(np.float64), minlength=len(texts))
    lengths = np.diff(offsets).astype(np.float64)
    lines = np.array([t.count("\n") + 1 for t in texts], dtype=np.float64)
    base = len(MARKDOWN_CUES)
    rows[:, base] = np.log1p(lengths)
    rows[:, base + 1] = np.log1p(lines)
    rows[:, base + 2] = np.log1p(lengths / lines)
    rows[:, base + 3] = upper / np.maximum(letters, 1)
    return rows


class StyleFeaturizer:
    """Texts to sparse style vectors (rows of FEATURE_DIM columns). Stateless and thread-safe."""

    def transform(self, texts: Sequence[str]):  # noqa: ANN201 - a scipy sparse matrix
        """The sparse feature matrix (len(texts) x FEATURE_DIM, float32, CSR)."""
        from scipy import sparse

        clipped = [_clip(t) for t in texts]
        lengths = np.cumsum([len(t) + 2 for t in clipped])
        parts, start = [], 0
        while start < len(clipped):
            done = int(lengths[start - 1]) if start else 0
            stop = max(start + 1, int(np.searchsorted(lengths, done + BATCH_CHARS, side="right")))
            parts.append(self._transform(clipped[start:stop]))
            start = stop
        if not parts:
            return sparse.csr_matrix((0, FEATURE_DIM), dtype=np.float32)
        return parts[0] if len(parts) == 1 else sparse.vstack(parts, format="csr", dtype=np.float32)

    @staticmethod
    def _transform(clipped: list[str]):  # noqa: ANN205 - a scipy sparse matrix
        from scipy import sparse

        n = len(clipped)
        markdown = markdown_structure(clipped)
        norms = np.linalg.norm(markdown, axis=1, keepdims=True)
        markdown = markdown / np.where(norms > 0, norms, 1.0)
        hashes, rows = word_tokens(clipped)
        blocks = [char_ngrams(clipped) * BLOCK_WEIGHTS["char"],
                  word_features(hashes, rows, n) * BLOCK_WEIGHTS["word"],
                  opening_features(hashes, rows, n) * BLOCK_WEIGHTS["opening"],
                  sparse.csr_matrix(markdown.astype(np.float32) * BLOCK_WEIGHTS["markdown"])]
        return sparse.hstack(blocks, format="csr", dtype=np.float32)
