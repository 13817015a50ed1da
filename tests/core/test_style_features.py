"""The vectorised style features: a text's vector does not depend on the batch it is in, n-grams
never cross from one text into the next, and odd text (empty, astral characters, case changes that
change the length, very long) is handled."""

from __future__ import annotations

import numpy as np

from app.core.screen.style_features import (
    CHAR_FEATURES,
    FEATURE_DIM,
    MAX_CHARS,
    StyleFeaturizer,
    char_ngrams,
    markdown_structure,
    word_tokens,
)

TEXTS = ["Here is a Python solution:\n```python\nprint('hi')\n```", "", "   \n ", "İstanbul 🙂 naïve **bold**",
         "# Title\n\n- one\n- two\n1. three", "x" * (MAX_CHARS * 2), "The the THE the."]


def test_a_texts_vector_does_not_depend_on_its_batch() -> None:
    featurizer = StyleFeaturizer()
    batch = featurizer.transform(TEXTS).toarray()
    assert batch.shape == (len(TEXTS), FEATURE_DIM)
    for i, text in enumerate(TEXTS):
        alone = featurizer.transform([text]).toarray()[0]
        assert np.allclose(alone, batch[i], atol=1e-6), text[:30]
    reordered = featurizer.transform(TEXTS[::-1]).toarray()[::-1]
    assert np.allclose(reordered, batch, atol=1e-6)


def test_ngrams_stay_inside_their_text_and_repeat_where_the_text_repeats() -> None:
    counts = char_ngrams(["ab", "ab", "ba"])
    # "\x02ab\x03" has 4 + 3 + 2 + 1 = 10 n-grams of 1 to 4 characters and none of 5: at most 10 columns.
    assert counts[0].nnz <= 10 and counts[0].nnz >= 9
    assert (counts[0] != counts[1]).nnz == 0
    assert (counts[0] != counts[2]).nnz > 0
    assert counts.shape[1] == CHAR_FEATURES
    hashes, rows = word_tokens(["Hello, world! hello", "", "x"])
    assert rows.tolist() == [0, 0, 0, 0, 0, 2]  # hello , world ! hello | (nothing) | x
    assert hashes[0] == hashes[4] and len(set(hashes[:4].tolist())) == 4


def test_odd_text_gives_finite_unit_blocks() -> None:
    matrix = StyleFeaturizer().transform(TEXTS)
    assert np.isfinite(matrix.data).all()
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1))).ravel()
    assert (norms > 0).all() and (norms <= 1.0 + 0.8 + 0.6 + 0.6 + 1e-5).all()
    markdown = markdown_structure(TEXTS)
    assert markdown[4, 0] > 0 and markdown[4, 1] > 0 and markdown[4, 2] > 0  # heading, bullets, numbered
    assert markdown[6, -1] > 0.3  # share of upper-case letters


def test_long_batches_are_hashed_in_groups_with_the_same_result(monkeypatch) -> None:  # noqa: ANN001
    import app.core.screen.style_features as features

    texts = TEXTS * 5
    whole = StyleFeaturizer().transform(texts).toarray()
    monkeypatch.setattr(features, "BATCH_CHARS", 300)  # several groups, one text longer than a group
    grouped = StyleFeaturizer().transform(texts)
    assert grouped.shape == whole.shape and np.allclose(grouped.toarray(), whole, atol=1e-6)
    assert StyleFeaturizer().transform([]).shape == (0, FEATURE_DIM)
