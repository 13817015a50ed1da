"""The outcome of matching a dataset to the ledger, and what is done with it afterwards: the status
of one row, the shares, the untraced rows written out, and the method described for a statement."""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from app.core.errors import StillroomError
from app.core.outfiles import replace_file
from app.core.progress import Progress
from app.core.provenance import minhash
from app.core.provenance.dataset import DatasetError, DatasetRow, DatasetShape, RowProblem, file_sha256, iter_rows
from app.core.textnorm import NORMALIZATION

TRACED_EXACT, TRACED_NEAR, UNTRACED = "traced-exact", "traced-near", "untraced"
STATUSES = (TRACED_EXACT, TRACED_NEAR, UNTRACED)
MAX_PROBLEMS = 100
# Thresholds of near matching (used by match.py, described by method_description).
NEAR_MIN = 0.80
TRUNC_PREFIX_MIN = 0.90
TRUNC_MIN_SHARE = 0.30
SHORT_CHARS = 32
PROMPT_MIN = 0.80


class MatchCancelled(StillroomError):
    """The match was cancelled before it finished; nothing was reported."""


@dataclass(frozen=True, kw_only=True)
class MatchProgress(Progress):
    """Yielded while matching: the stage (hashing, reading, indexing, near), how far, of how much,
    counted in `unit` (rows or bytes)."""

    unit: str = "rows"


@dataclass
class MatchReport:
    """The outcome of matching one dataset file against one ledger (lists sorted by row index)."""

    dataset_path: str
    dataset_name: str
    dataset_sha256: str
    dataset_size: int
    shape: DatasetShape
    rows: int
    malformed: int
    problems: list[RowProblem]
    counts: dict[str, int]
    traced_ids: list[int]
    near: list[tuple[int, int, float]]
    exact: list[tuple[int, int]]
    untraced: list[int]
    method: dict[str, Any] = field(default_factory=dict)
    ledger_path: str = ""

    def status_of(self, index: int) -> tuple[str, int | None, float | None]:
        """(status, ledger id, score) of the row at `index`; ValueError for a malformed or unknown row."""
        found = _find(self.exact, index)
        if found is not None:
            return TRACED_EXACT, found[1], None
        found = _find(self.near, index)
        if found is not None:
            return TRACED_NEAR, found[1], found[2]
        position = bisect.bisect_left(self.untraced, index)
        if position < len(self.untraced) and self.untraced[position] == index:
            return UNTRACED, None, None
        raise ValueError(f"row {index} is not a valid row of {self.dataset_name}")

    @property
    def traced(self) -> int:
        """Rows traced to the ledger, exactly or after edits."""
        return self.counts.get(TRACED_EXACT, 0) + self.counts.get(TRACED_NEAR, 0)

    def nothing_traced(self) -> str | None:
        """Why no row of the dataset is traced to the ledger (None when some row is): every row
        malformed, no rows at all, or none of the rows found in the ledger."""
        if self.traced:
            return None
        if self.rows == 0 and self.malformed:
            first = f" (first: {self.problems[0].reason})" if self.problems else ""
            return (f"{self.dataset_name}: every one of its {self.malformed} rows is malformed for the shape "
                    f"{self.shape.kind}{first}, so no row is traced to the ledger")
        if self.rows == 0:
            return f"{self.dataset_name}: it holds no rows, so no row is traced to the ledger"
        return (f"{self.dataset_name}: none of its {self.rows} rows is in the ledger"
                f"{f' ({self.malformed} more are malformed)' if self.malformed else ''}")

    def share(self, status: str) -> float:
        """The share of valid rows with `status` (0 when there are none)."""
        return self.counts.get(status, 0) / self.rows if self.rows else 0.0


def _find(pairs: list[Any], index: int) -> Any:
    position = bisect.bisect_left(pairs, index, key=lambda item: item[0])
    return pairs[position] if position < len(pairs) and pairs[position][0] == index else None


def method_description() -> dict[str, Any]:
    """How rows are matched, for the statement (algorithm, thresholds, library versions)."""
    return {
        "exact": {"key": "response_hash (+ prompt_hash where responses repeat or are short)",
                  "hash": "sha256", "normalization": NORMALIZATION},
        "near": {
            "candidates": "MinHash LSH over word bigrams of case- and punctuation-folded text, "
                          "plus opening word windows for truncations, filtered by estimated Jaccard similarity",
            "num_perm": minhash.NUM_PERM, "bands": minhash.BANDS, "rows_per_band": minhash.ROWS,
            "opening_windows": minhash.WINDOWS, "window_words": minhash.PREFIX_WORDS, "signature_min": minhash.SIGNATURE_MIN,
            "truncation_signature_min": minhash.TRUNCATION_MIN,
            "score": "Indel similarity (rapidfuzz fuzz.ratio / 100) of the folded response texts",
            "threshold": NEAR_MIN,
            "truncation": {"min_share": TRUNC_MIN_SHARE, "prefix_similarity": TRUNC_PREFIX_MIN},
            "short_response_chars": SHORT_CHARS, "prompt_threshold": PROMPT_MIN,
        },
        "libraries": {name: _version(name) for name in ("rapidfuzz", "numpy")},
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def export_untraced(report: MatchReport, out_path: Path | str) -> int:
    """Write the untraced rows as JSON Lines ({"row", "prompt", "response"}) and return how many.
    DatasetError when the dataset file changed since it was matched (its rows would not be the same)."""
    if file_sha256(report.dataset_path) != report.dataset_sha256:
        raise DatasetError(f"{report.dataset_path}: the file changed since it was matched; match it again")
    wanted = report.untraced
    written = 0
    position = 0
    out = Path(out_path)
    try:
        with replace_file(out) as handle:  # owner-only: it holds prompts and responses
            for item in iter_rows(report.dataset_path, report.shape):
                if position >= len(wanted):
                    break
                if not isinstance(item, DatasetRow) or item.index != wanted[position]:
                    continue
                handle.write(json.dumps({"row": item.index, "prompt": item.prompt, "response": item.response},
                                        ensure_ascii=False) + "\n")
                written += 1
                position += 1
    except OSError as exc:
        raise DatasetError(f"{out}: cannot be written ({exc.strerror or exc})") from exc
    return written


__all__ = ["MAX_PROBLEMS", "MatchCancelled", "MatchProgress", "MatchReport", "STATUSES", "TRACED_EXACT",
           "TRACED_NEAR", "UNTRACED", "export_untraced", "method_description"]
