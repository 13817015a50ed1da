"""A 2-D PCA projection of embedding vectors (numpy only, Qt-free).

Fitted once per pattern-library hash on the library's exemplars plus the generations known at that
time, and kept in memory; generations that arrive later are placed with the fitted transform, without
refitting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_FITTED: dict[str, Projection] = {}


@dataclass(frozen=True)
class Projection:
    """mean (dim,) and components (2, dim) of a fitted PCA."""

    mean: np.ndarray
    components: np.ndarray

    @classmethod
    def fit(cls, vectors: np.ndarray) -> Projection:
        """Fit the first two principal components of `vectors` (n x dim) with an SVD."""
        data = np.asarray(vectors, dtype=np.float64)
        mean = data.mean(axis=0)
        _, _, vt = np.linalg.svd(data - mean, full_matrices=False)
        components = np.zeros((2, data.shape[1]))
        components[: min(2, vt.shape[0])] = vt[:2]
        # a deterministic sign, so that the map does not flip between fits
        for row in components:
            if row[np.argmax(np.abs(row))] < 0:
                row *= -1
        return cls(mean, components)

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """(n, 2) coordinates of `vectors`."""
        if len(vectors) == 0:
            return np.zeros((0, 2))
        return (np.asarray(vectors, dtype=np.float64) - self.mean) @ self.components.T


def projection_for(library_hash: str, exemplars: np.ndarray, generations: np.ndarray) -> Projection:
    """The projection cached for this library, fitted on exemplars + generations the first time."""
    projection = _FITTED.get(library_hash)
    if projection is None:
        projection = Projection.fit(np.vstack([exemplars, generations]) if len(generations) else exemplars)
        _FITTED[library_hash] = projection
    return projection


def forget_projections() -> None:
    """Drop every cached projection (tests)."""
    _FITTED.clear()
