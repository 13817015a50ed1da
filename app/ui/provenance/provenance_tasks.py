"""The Provenance view's jobs, as generator factories for its JobRunner.

Qt-free. Each job yields Progress (or nothing) and returns its result.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from app.core.cancel import CancelToken
from app.core.progress import one_step
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
Job = Callable[[CancelToken], Generator[Any, None, Any]]


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


@dataclass
class Undetected:
    """A readable file of no known shape (or whose named fields are missing): its columns and why."""

    path: Path
    columns: tuple[str, ...]
    reason: str


def detect_job(path: Path, fields: dict[str, str] | None) -> Job:
    """Detect the file's shape and read its first rows: returns Detected, or Undetected when the
    fields must be named by hand."""

    def detect() -> Detected | Undetected:
        try:
            shape = detect_shape(path, fields or None)
        except ShapeUnknownError as exc:
            return Undetected(path, exc.columns, str(exc))
        return Detected(path, shape, list(islice(iter_rows(path, shape), PREVIEW_ROWS)))

    return lambda cancel: one_step(detect)


def match_job(path: Path, ledger_path: Path, shape: DatasetShape) -> Job:
    """Match the dataset to the ledger: MatchProgress items; returns the MatchReport."""
    return lambda cancel: match_dataset(path, ledger_path, shape=shape, cancel=cancel)


def review_job(report: MatchReport, limit: int = REVIEW_ROWS) -> Job:
    """Read the text of the first `limit` untraced and near rows: returns ReviewRows (None if cancelled)."""

    def read(cancel: CancelToken) -> ReviewRows | None:
        wanted = set(report.untraced[:limit]) | {index for index, _, _ in report.near[:limit]}
        texts: dict[int, tuple[str, str]] = {}
        last = max(wanted, default=-1)
        for item in iter_rows(report.dataset_path, report.shape):
            if cancel.cancelled:
                return None
            if isinstance(item, DatasetRow) and item.index in wanted:
                texts[item.index] = (item.prompt, item.response)
            if item.index >= last:
                break
        return ReviewRows(texts)

    return lambda cancel: one_step(lambda: read(cancel))


def statement_job(report: MatchReport, ledger_path: Path, screen: bool) -> Job:
    """Collect what the statement will say (models, screening) for review: returns the predicate."""
    return lambda cancel: iter_statement(report, ledger_path, Declared(), cancel=cancel, screen=screen)


def write_job(report: MatchReport, ledger_path: Path, declared: Declared, out_dir: Path,
              key_dir: Path | None, screen: bool, force: bool, allow_untraced: bool = False) -> Job:
    """Write the card, Croissant and signed statement: returns {name: path}. Errors with
    NothingTraced when no row is traced and allow_untraced is False."""
    return lambda cancel: iter_provenance(report, ledger_path, declared, out_dir, key_dir=key_dir, screen=screen,
                                          force=force, allow_untraced=allow_untraced, cancel=cancel)


def export_job(report: MatchReport, out_path: Path) -> Job:
    """Write the untraced rows as JSON Lines: returns the count."""

    return lambda cancel: one_step(lambda: export_untraced(report, out_path))
