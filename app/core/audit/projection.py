"""2-D projections of embedding vectors for the audit map: PCA (numpy, instant) and UMAP (umap-learn).

Qt-free. A projection is fitted once per (pattern-library hash, method) on the library's exemplars and
the generations known at that time, then kept in memory and on disk (``projections/`` in the data
folder); generations that arrive later are placed with the fitted ``transform``, without refitting.
Coordinates already computed are cached by text key, so a refresh transforms only new prompts.

On disk nothing is unpickled: a PCA model is saved as arrays (``.npz``, loaded with
``allow_pickle=False``) and the coordinate cache likewise, each with a SHA-256 of its contents that
is checked when it is read back; a file that does not check out is ignored and the projection
refitted. A UMAP model can only be saved with pickle, so it is kept in memory only: a later session
reuses its saved coordinates, and refits when it has new prompts to place. Pickle files left by
earlier versions are never opened.

UMAP is slow to start: ``import umap`` takes ~20 s (numba) and the first fit pays ~60 s of JIT
compilation; numba's cache goes to ``numba-cache/`` in the data folder (NUMBA_CACHE_DIR) so the next
start is faster. ``fit_projection`` yields Progress and honours a CancelToken: the epochs of
a UMAP fit are interrupted through its progress bar hook; the neighbour search before them is not
interruptible, so a cancel there returns at once and lets the abandoned fit end on its own.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import warnings
import zipfile
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.core.cancel import NEVER, CancelToken
from app.core.outfiles import replace_file
from app.core.progress import Progress

METHODS = ("pca", "umap")
METHOD_NAMES = {"pca": "PCA", "umap": "UMAP"}
FIT_LIMIT = 50_000          # UMAP fits on at most this many vectors; the rest are transformed
TRANSFORM_CHUNK = 2_000     # vectors per transform call (progress and cancel in between)
READ_CHUNK = 50_000         # vectors read from the cache at a time to fit or place (bounded memory)
UMAP_NEIGHBOURS = 15
UMAP_MIN_DIST = 0.1
UMAP_SEED = 42
POLL_S = 0.2
NUMBA_CACHE_SUBDIR = "numba-cache"
PROJECTIONS_SUBDIR = "projections"
COORDS_SUFFIX = "-coords.npz"
MODEL_SUFFIX = "-model.npz"
CHECKSUM_KEY = "sha256"


class ProjectionCancelled(Exception):
    """Raised inside a UMAP fit (through its progress hook) when the token is cancelled."""


@dataclass(frozen=True)
class PcaModel:
    """mean (dim,) and components (2, dim) of a fitted PCA."""

    mean: np.ndarray
    components: np.ndarray

    @classmethod
    def fit(cls, vectors: np.ndarray) -> PcaModel:
        """Fit the first two principal components of `vectors` (n x dim): the top eigenvectors of
        the dim x dim covariance (one pass over the data, then a small eigendecomposition)."""
        return cls.fit_chunks([vectors])

    @classmethod
    def fit_chunks(cls, chunks: Iterable[np.ndarray]) -> PcaModel:
        """fit() over vectors that arrive in chunks (n_i x dim each): the sum and the dim x dim
        scatter matrix accumulate in float64, so memory does not grow with the number of vectors."""
        count, total, scatter = 0, None, None
        for chunk in chunks:
            data = np.asarray(chunk, dtype=np.float64)
            if total is None:
                total, scatter = np.zeros(data.shape[1]), np.zeros((data.shape[1], data.shape[1]))
            count += len(data)
            total += data.sum(axis=0)
            scatter += data.T @ data
        if total is None or count == 0:
            raise ValueError("a projection needs vectors to fit")
        mean = total / count
        _, eigenvectors = np.linalg.eigh(scatter - count * np.outer(mean, mean))
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
              cancel: CancelToken = NEVER) -> Generator[Progress, None, np.ndarray | None]:
        """Coordinates for `keys` (vectors in the same order; rows of known keys are not read):
        cached ones as they are, the rest transformed in chunks. Yields Progress ('placing'),
        returns the (n, 2) coordinates (None if cancelled)."""
        out = np.zeros((len(keys), 2))
        todo = [i for i, key in enumerate(keys) if key not in self.coords]
        for start in range(0, len(todo), TRANSFORM_CHUNK):
            if cancel.cancelled:
                return None
            chunk = todo[start:start + TRANSFORM_CHUNK]
            placed = self.transform(np.asarray(vectors)[chunk])
            for index, xy in zip(chunk, placed):
                self.coords[keys[index]] = (float(xy[0]), float(xy[1]))
            yield Progress("placing", min(len(todo), start + TRANSFORM_CHUNK), len(todo))
        for i, key in enumerate(keys):
            out[i] = self.coords[key]
        return out

    def can_place(self, keys: Sequence[str]) -> bool:
        """True when every key has coordinates already or there is a model to place the others."""
        return self.model is not None or all(key in self.coords for key in keys)

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """(n, 2) coordinates of new vectors, with the fitted model (ValueError when only the saved
        coordinates of a projection were loaded, without its model)."""
        if len(vectors) == 0:
            return np.zeros((0, 2))
        if self.model is None:
            raise ValueError(f"the {METHOD_NAMES[self.method]} model is not loaded; refit the projection")
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
            self.events.put(Progress("epochs", done, total))

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
        events.put(Progress("fitting", 0, 0))
        writer = _CancelWriter(cancel, events)
        model = umap.UMAP(n_neighbors=min(UMAP_NEIGHBOURS, max(2, len(vectors) - 1)), min_dist=UMAP_MIN_DIST,
                          metric="cosine", random_state=UMAP_SEED, n_jobs=1, low_memory=True,
                          tqdm_kwds={"file": writer, "disable": False, "mininterval": 0.25, "ascii": True,
                                     "bar_format": "Epochs completed: {n}/{total}\n"})
        model.fit(vectors)
        model.tqdm_kwds = {"disable": True}  # the writer holds the queue and token: not for transform
        events.put(("model", model))
    except BaseException as exc:  # noqa: BLE001 - handed to the generator on the worker thread
        events.put(("error", exc))


def fit_projection(method: str, vectors: np.ndarray, cancel: CancelToken = NEVER, cache_root: Path | None = None,
                   keys: Sequence[str] | None = None) -> Generator[Progress, None, FittedProjection | None]:
    """Fit a projection of `vectors`; yields Progress, returns the FittedProjection (None if cancelled).

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
        yield Progress("fitting", 0, 0)
        return FittedProjection("pca", PcaModel.fit(data))
    rows = fit_rows(len(data))
    data = data[rows]
    yield Progress("loading", 0, 0)
    events: queue.Queue = queue.Queue()
    worker = threading.Thread(target=_fit_umap, args=(data, cancel, events, cache_root), name="stillroom-umap-fit",
                              daemon=True)
    worker.start()
    while True:
        if cancel.cancelled:
            return None  # the fit stops at its next epoch (or after its neighbour search)
        try:
            event = events.get(timeout=POLL_S)
        except queue.Empty:
            continue
        if isinstance(event, Progress):
            yield event
        elif event[0] == "model":
            fitted = FittedProjection("umap", event[1])
            if keys is not None:
                layout = np.asarray(event[1].embedding_, dtype=np.float64)
                fitted.coords = {keys[row]: (float(x), float(y)) for row, (x, y) in zip(rows, layout)}
            return fitted
        elif isinstance(event[1], ProjectionCancelled):
            return None
        else:
            raise event[1]


def fit_rows(n: int) -> np.ndarray:
    """The rows of n that UMAP fits on: all, or an even sample of FIT_LIMIT."""
    return np.linspace(0, n - 1, FIT_LIMIT).astype(int) if n > FIT_LIMIT else np.arange(n)


def fit_projection_by_key(method: str, keys: Sequence[str], read: Callable[[Sequence[str]], np.ndarray],
                          cancel: CancelToken = NEVER,
                          cache_root: Path | None = None) -> Generator[Progress, None, FittedProjection | None]:
    """fit_projection over the vectors of `keys`, read (by `read`) a chunk at a time, so that memory
    does not grow with the number of keys: PCA from running sums over every vector, UMAP from its
    sample's vectors only. The same fit as fit_projection(method, read(keys), keys=keys)."""
    if method not in METHODS:
        raise ValueError(f"unknown projection method {method!r}; expected one of {', '.join(METHODS)}")
    if len(keys) < 3:
        raise ValueError(f"a projection needs at least 3 vectors, got {len(keys)}")
    if method != "pca":
        chosen = [keys[row] for row in fit_rows(len(keys))]
        return (yield from fit_projection(method, read(chosen), cancel, cache_root, chosen))

    def chunks() -> Iterator[np.ndarray]:
        for start in range(0, len(keys), READ_CHUNK):
            if cancel.cancelled:
                return
            yield np.asarray(read(keys[start:start + READ_CHUNK]), dtype=np.float32)

    yield Progress("fitting", 0, 0)
    if cancel.cancelled:
        return None
    model = PcaModel.fit_chunks(chunks())  # the first chunk is always read: cancel is checked after it
    return None if cancel.cancelled else FittedProjection("pca", model)


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of `arrays` (in name order)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Save `arrays` as an .npz with their checksum, atomically (a mkstemp file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with replace_file(path, binary=True) as handle:
        np.savez(handle, **arrays, **{CHECKSUM_KEY: np.array(_checksum(arrays))})


def read_arrays(path: Path | None, names: Sequence[str]) -> dict[str, np.ndarray] | None:
    """The arrays `names` of an .npz written by write_arrays, or None when the file is missing,
    unreadable, lacks one, holds objects (never unpickled) or does not match its checksum."""
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            arrays = {name: saved[name] for name in names}
            recorded = str(saved[CHECKSUM_KEY])
    except (OSError, ValueError, KeyError, EOFError, NotImplementedError, zipfile.BadZipFile):
        return None
    return arrays if recorded == _checksum(arrays) else None


def _read_coords(path: Path | None) -> dict[str, tuple[float, float]]:
    saved = read_arrays(path, ("keys", "xy"))
    if saved is None or saved["xy"].shape != (len(saved["keys"]), 2):
        return {}
    return {str(k): (float(x), float(y)) for k, (x, y) in zip(saved["keys"], saved["xy"])}


class ProjectionStore:
    """Fitted projections by (library hash, method), in memory and as checksummed .npz files in
    `folder` (PCA models and coordinates; UMAP models stay in memory, see the module docstring).

    Used from one worker thread at a time (the audit view runs one job at a time)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._memory: dict[tuple[str, str], FittedProjection] = {}
        self._lock = threading.Lock()

    def _file(self, library_hash: str, method: str, suffix: str = MODEL_SUFFIX) -> Path | None:
        return self.folder / PROJECTIONS_SUBDIR / f"{library_hash[:16]}-{method}{suffix}" if self.folder else None

    def get(self, library_hash: str, method: str) -> FittedProjection | None:
        """The fitted projection, from memory or disk (None if never fitted, unreadable or failing
        its checksum). A UMAP projection from disk has its coordinates but no model (can_place)."""
        with self._lock:
            found = self._memory.get((library_hash, method))
            if found is not None:
                return found
            coords = _read_coords(self._file(library_hash, method, COORDS_SUFFIX))
            if method == "pca":
                saved = read_arrays(self._file(library_hash, method), ("mean", "components"))
                if saved is None or saved["components"].ndim != 2 or saved["components"].shape[0] != 2 \
                        or saved["mean"].shape != (saved["components"].shape[1],):
                    return None
                found = FittedProjection("pca", PcaModel(saved["mean"].astype(np.float64),
                                                         saved["components"].astype(np.float64)), coords)
            elif coords:
                found = FittedProjection(method, None, coords)
            else:
                return None
            self._memory[(library_hash, method)] = found
            return found

    def put(self, library_hash: str, projection: FittedProjection) -> None:
        """Keep a fitted projection (memory) and save a PCA model (disk); coordinates follow in save_coords()."""
        with self._lock:
            self._memory[(library_hash, projection.method)] = projection
        path = self._file(library_hash, projection.method)
        if path is not None and isinstance(projection.model, PcaModel):
            write_arrays(path, {"mean": projection.model.mean, "components": projection.model.components})

    def save_coords(self, library_hash: str, method: str) -> None:
        """Write the coordinate cache of a projection held in memory (atomic replace, checksummed)."""
        path = self._file(library_hash, method, COORDS_SUFFIX)
        projection = self._memory.get((library_hash, method))
        if path is None or projection is None:
            return
        keys = np.array(list(projection.coords), dtype="U64")
        xy = np.array(list(projection.coords.values()), dtype=np.float64).reshape(len(keys), 2)
        write_arrays(path, {"keys": keys, "xy": xy})

    def forget(self) -> None:
        """Drop what is held in memory (the files stay)."""
        with self._lock:
            self._memory.clear()
