"""The Provenance view's jobs, as generator factories for GeneratorThread.

Qt-free. Each job yields progress items and ends with one Finished(value) holding what the core
generator returned (GeneratorThread passes on what is yielded, not a return value). Nothing is
yielded after a cancel.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from app.core.cancel import CancelToken
from app.core.provenance import (
    DatasetRow,
    DatasetShape,
    Declared,
    MatchReport,
    ShapeUnknownError,
    detect_shape,
    export_untraced,
    iter_provenance,
    iter_rows,
    iter_statement,
    match_dataset,
)

PREVIEW_ROWS = 20
REVIEW_ROWS = 200
Job = Callable[[CancelToken], Iterator[Any]]


@dataclass
class Finished:
    """The last item of a job: its result."""

    value: Any


@dataclass
class Detected:
    """A dataset's shape and its first rows (DatasetRow or RowProblem)."""

    path: Path
    shape: DatasetShape
    preview: list[Any]


@dataclass
class ReviewRows:
    """Text of the first untraced and near rows: row index -> (prompt, response)."""

    texts: dict[int, tuple[str, str]]


def _finish(generator: Generator[Any, None, Any], cancel: CancelToken) -> Iterator[Any]:
    value = yield from generator
    if not cancel.cancelled:
        yield Finished(value)


@dataclass
class Undetected:
    """A readable file of no known shape (or whose named fields are missing): its columns and why."""

    path: Path
    columns: tuple[str, ...]
    reason: str


def detect_job(path: Path, fields: dict[str, str] | None) -> Job:
    """Detect the file's shape and read its first rows: Finished(Detected), or Finished(Undetected)
    when the fields must be named by hand."""

    def run(cancel: CancelToken) -> Iterator[Any]:
        try:
            shape = detect_shape(path, fields or None)
        except ShapeUnknownError as exc:
            yield Finished(Undetected(path, exc.columns, str(exc)))
            return
        rows = list(islice(iter_rows(path, shape), PREVIEW_ROWS))
        if not cancel.cancelled:
            yield Finished(Detected(path, shape, rows))

    return run


def match_job(path: Path, ledger_path: Path, shape: DatasetShape) -> Job:
    """Match the dataset to the ledger: MatchProgress items, then Finished(MatchReport)."""
    return lambda cancel: _finish(match_dataset(path, ledger_path, shape=shape, cancel=cancel), cancel)


def review_job(report: MatchReport, limit: int = REVIEW_ROWS) -> Job:
    """Read the text of the first `limit` untraced and near rows: Finished(ReviewRows)."""

    def run(cancel: CancelToken) -> Iterator[Any]:
        wanted = set(report.untraced[:limit]) | {index for index, _, _ in report.near[:limit]}
        texts: dict[int, tuple[str, str]] = {}
        last = max(wanted, default=-1)
        for item in iter_rows(report.dataset_path, report.shape):
            if cancel.cancelled:
                return
            if isinstance(item, DatasetRow) and item.index in wanted:
                texts[item.index] = (item.prompt, item.response)
            if item.index >= last:
                break
        yield Finished(ReviewRows(texts))

    return run


def statement_job(report: MatchReport, ledger_path: Path, screen: bool) -> Job:
    """Collect what the statement will say (models, screening) for review: Finished(predicate)."""
    return lambda cancel: _finish(iter_statement(report, ledger_path, Declared(), cancel=cancel, screen=screen),
                                  cancel)


def write_job(report: MatchReport, ledger_path: Path, declared: Declared, out_dir: Path,
              key_dir: Path | None, screen: bool, force: bool, allow_untraced: bool = False) -> Job:
    """Write the card, Croissant and signed statement: Finished({name: path}). Errors with
    NothingTraced when no row is traced and allow_untraced is False."""
    return lambda cancel: _finish(iter_provenance(report, ledger_path, declared, out_dir, key_dir=key_dir,
                                                  screen=screen, force=force, allow_untraced=allow_untraced,
                                                  cancel=cancel), cancel)


def export_job(report: MatchReport, out_path: Path) -> Job:
    """Write the untraced rows as JSON Lines: Finished(count)."""

    def run(cancel: CancelToken) -> Iterator[Any]:
        yield Finished(export_untraced(report, out_path))

    return run
