"""Style features of a response, in the spirit of the work on model idiosyncrasies (word choice,
opening words, markdown structure) and of the hashed-n-gram baselines: hashed character n-grams,
hashed word n-grams, hashed opening words and a few markdown-structure counts.

Everything is stateless (feature hashing, no vocabulary), so a saved model needs only its weights,
and the same text always maps to the same vector. Every block is L2-normalised on its own and
weighted, then the blocks are put side by side in one sparse row.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

CHAR_FEATURES = 1 << 16
WORD_FEATURES = 1 << 15
OPENING_FEATURES = 1 << 12
OPENING_WORDS = 3
MAX_CHARS = 2000  # a response is judged by its first MAX_CHARS characters (bounded time per row)
BLOCK_WEIGHTS = {"char": 1.0, "word": 0.8, "opening": 0.6, "markdown": 0.6}
FEATURE_VERSION = "1"
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)
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


def _clip(text: str) -> str:
    return (text or "")[:MAX_CHARS]


def opening(text: str) -> str:
    """The response's first OPENING_WORDS words (and punctuation), lower-cased, as position-tagged tokens."""
    words = _WORD.findall(_clip(text).lower())[:OPENING_WORDS]
    return " ".join(f"o{i}_{w}" for i, w in enumerate(words)) or "o_empty"


def markdown_structure(texts: Sequence[str]) -> np.ndarray:
    """Per text: log(1 + count) of each markdown cue, then log length, lines, mean line length and
    the share of upper-case letters."""
    rows = np.zeros((len(texts), MARKDOWN_DIM), dtype=np.float64)
    for i, raw in enumerate(texts):
        text = _clip(raw)
        for j, (_, pattern) in enumerate(MARKDOWN_CUES):
            rows[i, j] = np.log1p(len(pattern.findall(text)))
        lines = text.count("\n") + 1
        letters = sum(1 for c in text if c.isalpha()) or 1
        base = len(MARKDOWN_CUES)
        rows[i, base] = np.log1p(len(text))
        rows[i, base + 1] = np.log1p(lines)
        rows[i, base + 2] = np.log1p(len(text) / lines)
        rows[i, base + 3] = sum(1 for c in text if c.isupper()) / letters
    return rows


class StyleFeaturizer:
    """Texts to sparse style vectors (rows of FEATURE_DIM columns). Stateless and thread-safe."""

    def __init__(self) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer

        common = {"alternate_sign": False, "norm": "l2", "dtype": np.float32}
        self._char = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=CHAR_FEATURES,
                                       lowercase=False, **common)
        self._word = HashingVectorizer(analyzer="word", ngram_range=(1, 2), n_features=WORD_FEATURES,
                                       token_pattern=r"(?u)\b\w+\b|[^\w\s]", lowercase=True, **common)
        self._opening = HashingVectorizer(analyzer="word", n_features=OPENING_FEATURES,
                                          token_pattern=r"\S+", lowercase=False, **common)

    def transform(self, texts: Sequence[str]):  # noqa: ANN201 - a scipy sparse matrix
        """The sparse feature matrix (len(texts) x FEATURE_DIM, float32, CSR)."""
        from scipy import sparse

        clipped = [_clip(t) for t in texts]
        markdown = markdown_structure(clipped)
        norms = np.linalg.norm(markdown, axis=1, keepdims=True)
        markdown = markdown / np.where(norms > 0, norms, 1.0)
        blocks = [self._char.transform(clipped) * BLOCK_WEIGHTS["char"],
                  self._word.transform(clipped) * BLOCK_WEIGHTS["word"],
                  self._opening.transform([opening(t) for t in clipped]) * BLOCK_WEIGHTS["opening"],
                  sparse.csr_matrix(markdown.astype(np.float32) * BLOCK_WEIGHTS["markdown"])]
        return sparse.hstack(blocks, format="csr", dtype=np.float32)
