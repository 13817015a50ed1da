"""Binning generations over time for the audit timeline (numpy only, Qt-free): how many per hour or
day, stacked by workflow, and the mean score of each pattern per bin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

UNITS = {"hour": 3600, "day": 86400}
MAX_AUTO_HOUR_BINS = 96


@dataclass
class Timeline:
    """bin_starts (UTC epoch seconds), the unit's length in seconds, workflows (stack order),
    counts (workflows x bins) and pattern_means (patterns x bins; NaN where a bin is empty)."""

    bin_starts: np.ndarray
    seconds: int
    workflows: list[str]
    counts: np.ndarray
    pattern_ids: list[str]
    pattern_means: np.ndarray
    score_sums: np.ndarray | None = None  # patterns x bins: what extend_timeline adds the new points to
    points: int = 0  # how many generations it bins


def pick_unit(started: np.ndarray) -> str:
    """'hour' when the generations span at most MAX_AUTO_HOUR_BINS hours, else 'day'."""
    if len(started) == 0:
        return "hour"
    return "hour" if (started.max() - started.min()) / UNITS["hour"] <= MAX_AUTO_HOUR_BINS else "day"


def build_timeline(started: np.ndarray, workflows: Sequence[str], scores: np.ndarray, pattern_ids: Sequence[str],
                   unit: str = "hour") -> Timeline:
    """Bin generations (UTC epoch seconds) by `unit` ('hour' or 'day')."""
    if unit not in UNITS:
        raise ValueError(f"unknown timeline unit {unit!r}; expected one of {', '.join(UNITS)}")
    seconds = UNITS[unit]
    names = sorted(set(workflows))
    started = np.asarray(started, dtype=np.float64)
    if len(started) == 0:
        return Timeline(np.zeros(0), seconds, names, np.zeros((len(names), 0)), list(pattern_ids),
                        np.zeros((len(pattern_ids), 0)))
    bins = np.floor(started / seconds).astype(np.int64)
    first = bins.min()
    index = bins - first
    n_bins = int(index.max()) + 1
    workflow_index = {name: i for i, name in enumerate(names)}
    rows = np.fromiter((workflow_index[w] for w in workflows), dtype=np.int64, count=len(workflows))
    counts = np.bincount(rows * n_bins + index, minlength=len(names) * n_bins).reshape(len(names), n_bins)
    per_bin = np.bincount(index, minlength=n_bins).astype(np.float64)
    sums = np.zeros((len(pattern_ids), n_bins))
    for column in range(len(pattern_ids)):
        sums[column] = np.bincount(index, weights=np.asarray(scores, dtype=np.float64)[:, column], minlength=n_bins)
    starts = (first + np.arange(n_bins)) * float(seconds)
    return Timeline(starts, seconds, names, counts.astype(np.float64), list(pattern_ids),
                    _means(sums, per_bin), sums, len(started))


def _means(sums: np.ndarray, per_bin: np.ndarray) -> np.ndarray:
    means = np.full(sums.shape, np.nan)
    filled = per_bin > 0
    means[:, filled] = sums[:, filled] / per_bin[filled]
    return means


def extend_timeline(timeline: Timeline, started: np.ndarray, workflows: Sequence[str],
                    scores: np.ndarray) -> Timeline | None:
    """`timeline` with generations appended to what it bins (their start times, workflows and
    scores), in time proportional to them and the bins; None when they need a new stack order (a
    workflow it has no row for) or start before its first bin: then build_timeline must run."""
    started = np.asarray(started, dtype=np.float64)
    if timeline.score_sums is None or not len(timeline.bin_starts) or not set(workflows) <= set(timeline.workflows):
        return None
    seconds = timeline.seconds
    first = int(round(timeline.bin_starts[0] / seconds))
    index = np.floor(started / seconds).astype(np.int64) - first
    if len(index) and index.min() < 0:
        return None
    n_bins = max(len(timeline.bin_starts), int(index.max()) + 1 if len(index) else 0)
    grow = n_bins - len(timeline.bin_starts)
    counts = np.pad(timeline.counts, ((0, 0), (0, grow)))
    sums = np.pad(timeline.score_sums, ((0, 0), (0, grow)))
    stack = {name: i for i, name in enumerate(timeline.workflows)}
    rows = [stack[w] for w in workflows]
    np.add.at(counts, (rows, index), 1.0)
    np.add.at(sums, (slice(None), index), np.asarray(scores, dtype=np.float64).reshape(len(index), -1).T)
    return Timeline((first + np.arange(n_bins)) * float(seconds), seconds, list(timeline.workflows), counts,
                    list(timeline.pattern_ids), _means(sums, counts.sum(axis=0)), sums, timeline.points + len(index))
