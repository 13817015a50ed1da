"""2-D projections of embedding vectors for the audit map: PCA (numpy, instant) and UMAP (umap-learn).

Qt-free. A projection is fitted once per (pattern-library hash, method) on the library's exemplars and
the generations known at that time, then kept in memory and on disk (``projections/`` in the data
folder); generations that arrive later are placed with the fitted ``transform``, without refitting.
Coordinates already computed are cached by text key, so a refresh transforms only new prompts.

UMAP is slow to start: ``import umap`` takes ~20 s (numba) and the first fit pays ~60 s of JIT
compilation; numba's cache goes to ``numba-cache/`` in the data folder (NUMBA_CACHE_DIR) so the next
start is faster. ``fit_projection`` yields ProjectionProgress and honours a CancelToken: the epochs of
a UMAP fit are interrupted through its progress bar hook; the neighbour search before them is not
interruptible, so a cancel there returns at once and lets the abandoned fit end on its own.
"""

from __future__ import annotations

import os
import pickle
import queue
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.core.cancel import NEVER, CancelToken

METHODS = ("pca", "umap")
METHOD_NAMES = {"pca": "PCA", "umap": "UMAP"}
FIT_LIMIT = 50_000          # UMAP fits on at most this many vectors; the rest are transformed
TRANSFORM_CHUNK = 2_000     # vectors per transform call (progress and cancel in between)
UMAP_NEIGHBOURS = 15
UMAP_MIN_DIST = 0.1
UMAP_SEED = 42
POLL_S = 0.2
NUMBA_CACHE_SUBDIR = "numba-cache"
PROJECTIONS_SUBDIR = "projections"
COORDS_SUFFIX = "-coords.npz"


class ProjectionCancelled(Exception):
    """Raised inside a UMAP fit (through its progress hook) when the token is cancelled."""


@dataclass(frozen=True)
class ProjectionProgress:
    """stage: 'loading', 'fitting', 'epochs' or 'placing'; done/total within the stage (0/0: unknown)."""

    stage: str
    done: int
    total: int


@dataclass(frozen=True)
class PcaModel:
    """mean (dim,) and components (2, dim) of a fitted PCA."""

    mean: np.ndarray
    components: np.ndarray

    @classmethod
    def fit(cls, vectors: np.ndarray) -> PcaModel:
        """Fit the first two principal components of `vectors` (n x dim): the top eigenvectors of
        the dim x dim covariance (one pass over the data, then a small eigendecomposition)."""
        data = np.asarray(vectors, dtype=np.float64)
        mean = data.mean(axis=0)
        centred = data - mean
        _, eigenvectors = np.linalg.eigh(centred.T @ centred)
        components = np.ascontiguousarray(eigenvectors[:, ::-1][:, :2].T)
        for row in components:  # a deterministic sign, so that the map does not flip between fits
            if row[np.argmax(np.abs(row))] < 0:
                row *= -1
        return cls(mean, components)

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """(n, 2) coordinates of `vectors`."""
        if len(vectors) == 0:
            return np.zeros((0, 2))
        return (np.asarray(vectors, dtype=np.float64) - self.mean) @ self.components.T


@dataclass
class FittedProjection:
    """A fitted model (PcaModel or umap.UMAP) and the coordinates it has given, by text key."""

    method: str
    model: Any
    coords: dict[str, tuple[float, float]] = field(default_factory=dict)

    def place(self, keys: Sequence[str], vectors: np.ndarray,
              cancel: CancelToken = NEVER) -> Iterator[ProjectionProgress | np.ndarray]:
        """Coordinates for `keys` (vectors in the same order; rows of known keys are not read):
        cached ones as they are, the rest transformed in chunks. Yields progress, then (n, 2)."""
        out = np.zeros((len(keys), 2))
        todo = [i for i, key in enumerate(keys) if key not in self.coords]
        for start in range(0, len(todo), TRANSFORM_CHUNK):
            if cancel.cancelled:
                return
            chunk = todo[start:start + TRANSFORM_CHUNK]
            placed = self.transform(np.asarray(vectors)[chunk])
            for index, xy in zip(chunk, placed):
                self.coords[keys[index]] = (float(xy[0]), float(xy[1]))
            yield ProjectionProgress("placing", min(len(todo), start + TRANSFORM_CHUNK), len(todo))
        for i, key in enumerate(keys):
            out[i] = self.coords[key]
        yield out

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the model only; coordinates are saved apart (they change with every refresh)."""
        return {"method": self.method, "model": self.model, "coords": {}}

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """(n, 2) coordinates of new vectors, with the fitted model."""
        if len(vectors) == 0:
            return np.zeros((0, 2))
        return np.asarray(self.model.transform(np.asarray(vectors, dtype=np.float32)), dtype=np.float64)


def configure_numba_cache(folder: Path) -> Path:
    """Point numba's on-disk cache at `folder`/numba-cache (unless NUMBA_CACHE_DIR is set already)."""
    path = Path(os.environ.setdefault("NUMBA_CACHE_DIR", str(folder / NUMBA_CACHE_SUBDIR)))
    path.mkdir(parents=True, exist_ok=True)
    return path


class _CancelWriter:
    """A file for tqdm: reads the epoch counter UMAP prints and raises once cancelled."""

    def __init__(self, cancel: CancelToken, events: queue.Queue) -> None:
        self.cancel, self.events = cancel, events

    def write(self, text: str) -> None:
        """Called by tqdm on every refresh (inside the fit)."""
        if self.cancel.cancelled:
            raise ProjectionCancelled
        digits = text.strip().split("Epochs completed:")[-1].split("/")
        if len(digits) == 2:
            try:
                done, total = int(digits[0].strip().split()[-1]), int(digits[1].strip().split()[0])
            except (ValueError, IndexError):
                return
            self.events.put(ProjectionProgress("epochs", done, total))

    def flush(self) -> None:
        """Nothing to flush."""


def _fit_umap(vectors: np.ndarray, cancel: CancelToken, events: queue.Queue, cache_root: Path | None) -> None:
    """Fit UMAP on this (plain Python) thread and put the model, or the exception, on `events`."""
    try:
        if cache_root is not None:
            configure_numba_cache(cache_root)
        # umap-learn warns on import that TensorFlow (for ParametricUMAP, unused here) is missing
        warnings.filterwarnings("ignore", message="Tensorflow not installed", category=ImportWarning)
        import umap  # noqa: PLC0415 - ~20 s, only when a UMAP map is asked for

        if cancel.cancelled:
            raise ProjectionCancelled
        events.put(ProjectionProgress("fitting", 0, 0))
        writer = _CancelWriter(cancel, events)
        model = umap.UMAP(n_neighbors=min(UMAP_NEIGHBOURS, max(2, len(vectors) - 1)), min_dist=UMAP_MIN_DIST,
                          metric="cosine", random_state=UMAP_SEED, n_jobs=1, low_memory=True,
                          tqdm_kwds={"file": writer, "disable": False, "mininterval": 0.25, "ascii": True,
                                     "bar_format": "Epochs completed: {n}/{total}\n"})
        model.fit(vectors)
        model.tqdm_kwds = {"disable": True}  # the writer holds the queue and token: not for transform or pickle
        events.put(("model", model))
    except BaseException as exc:  # noqa: BLE001 - handed to the generator on the worker thread
        events.put(("error", exc))


def fit_projection(method: str, vectors: np.ndarray, cancel: CancelToken = NEVER, cache_root: Path | None = None,
                   keys: Sequence[str] | None = None) -> Iterator[ProjectionProgress | FittedProjection]:
    """Fit a projection of `vectors`; yields progress, then one FittedProjection (nothing if cancelled).

    Runs on the caller's thread (an audit worker). UMAP fits on at most FIT_LIMIT rows (an even
    sample); with `keys` (one per vector) the rows it was fitted on keep their fitted coordinates,
    and place() puts the others with the fitted transform.
    """
    if method not in METHODS:
        raise ValueError(f"unknown projection method {method!r}; expected one of {', '.join(METHODS)}")
    data = np.asarray(vectors, dtype=np.float32)
    if len(data) < 3:
        raise ValueError(f"a projection needs at least 3 vectors, got {len(data)}")
    if method == "pca":
        yield ProjectionProgress("fitting", 0, 0)
        yield FittedProjection("pca", PcaModel.fit(data))
        return
    rows = np.arange(len(data))
    if len(data) > FIT_LIMIT:
        rows = np.linspace(0, len(data) - 1, FIT_LIMIT).astype(int)
        data = data[rows]
    yield ProjectionProgress("loading", 0, 0)
    events: queue.Queue = queue.Queue()
    worker = threading.Thread(target=_fit_umap, args=(data, cancel, events, cache_root), name="stillroom-umap-fit",
                              daemon=True)
    worker.start()
    while True:
        if cancel.cancelled:
            return  # the fit stops at its next epoch (or after its neighbour search)
        try:
            event = events.get(timeout=POLL_S)
        except queue.Empty:
            continue
        if isinstance(event, ProjectionProgress):
            yield event
        elif event[0] == "model":
            fitted = FittedProjection("umap", event[1])
            if keys is not None:
                layout = np.asarray(event[1].embedding_, dtype=np.float64)
                fitted.coords = {keys[row]: (float(x), float(y)) for row, (x, y) in zip(rows, layout)}
            yield fitted
            return
        elif isinstance(event[1], ProjectionCancelled):
            return
        else:
            raise event[1]


def _read_coords(path: Path | None) -> dict[str, tuple[float, float]]:
    if path is None or not path.exists():
        return {}
    try:
        with np.load(path) as saved:
            return {str(k): (float(x), float(y)) for k, (x, y) in zip(saved["keys"], saved["xy"])}
    except (OSError, ValueError, KeyError):
        return {}


class ProjectionStore:
    """Fitted projections by (library hash, method), in memory and as pickles in `folder`.

    Used from one worker thread at a time (the audit view runs one job at a time)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._memory: dict[tuple[str, str], FittedProjection] = {}
        self._lock = threading.Lock()

    def _file(self, library_hash: str, method: str, suffix: str = ".pickle") -> Path | None:
        return self.folder / PROJECTIONS_SUBDIR / f"{library_hash[:16]}-{method}{suffix}" if self.folder else None

    def get(self, library_hash: str, method: str) -> FittedProjection | None:
        """The fitted projection, from memory or disk (None if never fitted or unreadable)."""
        with self._lock:
            found = self._memory.get((library_hash, method))
            if found is not None:
                return found
            path = self._file(library_hash, method)
            if path is None or not path.exists():
                return None
            if method == "umap" and self.folder is not None:
                configure_numba_cache(self.folder)
            try:
                with path.open("rb") as handle:
                    found = pickle.load(handle)  # noqa: S301 - our own file in the owner-only data folder
            except Exception:  # noqa: BLE001 - a stale or broken cache is refitted
                return None
            if not isinstance(found, FittedProjection) or found.method != method:
                return None
            found.coords = _read_coords(self._file(library_hash, method, COORDS_SUFFIX))
            self._memory[(library_hash, method)] = found
            return found

    def put(self, library_hash: str, projection: FittedProjection) -> None:
        """Keep a fitted projection (memory) and save its model (disk); coordinates follow in save()."""
        with self._lock:
            self._memory[(library_hash, projection.method)] = projection
        path = self._file(library_hash, projection.method)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial")
            with partial.open("wb") as handle:
                pickle.dump(projection, handle, protocol=pickle.HIGHEST_PROTOCOL)
            partial.replace(path)

    def save_coords(self, library_hash: str, method: str) -> None:
        """Write the coordinate cache of a projection held in memory (atomic replace)."""
        path = self._file(library_hash, method, COORDS_SUFFIX)
        projection = self._memory.get((library_hash, method))
        if path is None or projection is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(projection.coords), dtype="U64")
        xy = np.array(list(projection.coords.values()), dtype=np.float64).reshape(len(keys), 2)
        partial = path.with_name(path.name + ".partial")
        with partial.open("wb") as handle:
            np.savez(handle, keys=keys, xy=xy)
        partial.replace(path)

    def forget(self) -> None:
        """Drop what is held in memory (the files stay)."""
        with self._lock:
            self._memory.clear()
