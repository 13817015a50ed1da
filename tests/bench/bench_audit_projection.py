"""Audit map projection time: PCA and UMAP fits (and placing new points) for 10,000 and 100,000 prompts.

The vectors are the pattern library's exemplars embedded with the real all-MiniLM-L6-v2, each repeated
with small Gaussian jitter (renormalized) until there are N: real embedding geometry, without
spending an hour embedding 100,000 prompts. UMAP fits on at most FIT_LIMIT (50,000) vectors and
places the rest with its transform, as the app does. The first UMAP fit in a fresh process pays
numba's compilation unless NUMBA_CACHE_DIR holds a warm cache; it is reported separately.

    python tests/bench/bench_audit_projection.py [--sizes 10000 100000] [--methods pca umap]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from app.core.audit.embeddings import Encoder  # noqa: E402
from app.core.audit.patterns import load_library  # noqa: E402
from app.core.audit.projection import FIT_LIMIT, FittedProjection, configure_numba_cache, fit_projection  # noqa: E402
from app.core.progress import drive  # noqa: E402

JITTER = 0.04


def vectors(n: int, base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """n jittered copies of the base vectors, unit length."""
    picked = base[rng.integers(0, len(base), n)] + rng.normal(0, JITTER, (n, base.shape[1])).astype(np.float32)
    return (picked / np.linalg.norm(picked, axis=1, keepdims=True)).astype(np.float32)


def fit(method: str, data: np.ndarray) -> tuple[FittedProjection, float]:
    start = time.perf_counter()
    fitted = drive(fit_projection(method, data))
    assert fitted is not None
    return fitted, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--methods", nargs="+", default=["pca", "umap"])
    args = parser.parse_args()
    cache = configure_numba_cache(Path(tempfile.gettempdir()) / "stillroom-bench")
    print(f"numba cache: {cache}")
    library = load_library()
    texts = [t for p in library.patterns.values() for t in (*p.exemplars, *p.benign_exemplars)]
    start = time.perf_counter()
    base = Encoder().encode(texts)
    print(f"embedded {len(texts)} library prompts in {time.perf_counter() - start:.1f} s")
    rng = np.random.default_rng(0)
    for method in args.methods:
        if method == "umap":
            start = time.perf_counter()
            import umap  # noqa: F401, PLC0415

            print(f"import umap: {time.perf_counter() - start:.1f} s")
            _, warm = fit("umap", vectors(2_000, base, rng))
            print(f"first UMAP fit (2,000 points; numba compiles or loads its cache): {warm:.1f} s")
        for n in args.sizes:
            data = vectors(n, base, rng)
            fitted, seconds = fit(method, data)
            fitted_on = min(n, FIT_LIMIT) if method == "umap" else n
            start = time.perf_counter()
            rest = fitted.transform(data[:1_000])
            first_place = time.perf_counter() - start
            start = time.perf_counter()
            fitted.transform(data[1_000:2_000])
            place = time.perf_counter() - start
            assert rest.shape == (1_000, 2) and np.isfinite(rest).all()
            total = seconds  # plus placing what the fit did not lay out: all of it for PCA, the rest for UMAP
            unplaced = n if method == "pca" else max(0, n - FIT_LIMIT)
            if unplaced:
                start = time.perf_counter()
                fitted.transform(data[:unplaced])
                total += time.perf_counter() - start
            print(f"{method.upper():4} {n:>7,} points: fit on {fitted_on:,} in {seconds:6.1f} s; whole map "
                  f"{total:6.1f} s; placing 1,000 new points {place * 1000:7.1f} ms "
                  f"(the first time in the process {first_place * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
