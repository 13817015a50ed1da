"""How the audit map colours and sizes its points: one category per point for the chosen colouring
(workflow, top pattern, level, time, model or sub-stream), its colour table and legend labels. Numpy only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from app.core.audit.growing import starts_with
from app.core.audit.levels import LEVELS
from app.core.audit.map_data import NO_GROUP, MapData
from app.core.audit.map_geometry import appended
from app.core.audit.report import LEVEL_COLOURS

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")
TIME_RAMP = ("#440154", "#414487", "#2a788e", "#22a884", "#7ad151", "#fde725")
COLOUR_MODES = {"workflow": "Colour by workflow", "pattern": "Colour by top pattern", "level": "Colour by level",
                "time": "Colour by time", "model": "Colour by model", "group": "Colour by sub-stream"}
POINT_SIZE, MIN_SCORE_SIZE, MAX_SCORE_SIZE = 7, 4, 15


@dataclass
class Colouring:
    """codes (one category index per point), colours (hex, one per category), labels (legend)."""

    codes: np.ndarray
    colours: list[str]
    labels: list[str]

    def rgb(self) -> np.ndarray:
        """The colour table as k x 3 integers 0-255."""
        return np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in self.colours], dtype=np.float64)


def _categorical(values: list[str], order: list[str], names: dict[str, str] | None = None,
                 colours: list[str] | None = None) -> Colouring:
    index = {value: i for i, value in enumerate(order)}
    codes = np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values))
    table = colours or [PALETTE[i % len(PALETTE)] for i in range(len(order))]
    return Colouring(codes, table, [(names or {}).get(v, v) for v in order])


def extend_colouring(previous: Colouring, old: MapData, data: MapData, mode: str) -> Colouring | None:
    """The colouring of `data`, whose first points are `old`'s (a refresh appended the rest), from
    `previous` (old's colouring under `mode`) with only the new points' codes computed; None when
    the categories or the old points' categories changed (a new workflow, model or sub-stream, a
    workflow re-levelled, the time range moved), and colouring() must run over every point."""
    n = len(old.generation_ids)
    if mode in ("pattern", "level", "model", "workflow", "group"):
        values = {"pattern": data.top_patterns, "level": data.levels, "model": data.models,
                  "workflow": data.workflows, "group": data.groups}[mode]
        if len(values) != len(data.generation_ids) or (mode in ("level", "group") and not starts_with(
                values, {"level": old.levels, "group": old.groups}[mode])):
            return None  # an old point's level or sub-stream changed (O(1) when the column only grew)
        # the categories in code order: the legend's labels are the values themselves for workflows,
        # models and sub-streams; patterns and levels have fixed orders
        order = {"pattern": list(data.pattern_ids), "level": list(LEVELS)}.get(mode, previous.labels)
        index = {value: i for i, value in enumerate(order)}
        if not set(values[n:]) <= index.keys():
            return None
        codes = np.fromiter((index[v] for v in values[n:]), dtype=np.int64, count=len(values) - n)
        return Colouring(appended(previous.codes, codes), previous.colours, previous.labels)
    return None  # time: its bins follow the whole range


def _stamp(seconds: float, span: float) -> str:
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M" if span < 3 * 86400 else "%Y-%m-%d")


def colouring(data: MapData, mode: str) -> Colouring:
    """The categories of `data`'s points under a colour mode (see COLOUR_MODES)."""
    if mode == "pattern":
        return _categorical(data.top_patterns, data.pattern_ids, data.pattern_names)
    if mode == "level":
        return _categorical(data.levels, list(LEVELS), colours=[LEVEL_COLOURS[level] for level in LEVELS])
    if mode == "model":
        return _categorical(data.models, sorted(set(data.models)))
    if mode == "group":
        groups = data.groups or [NO_GROUP] * len(data.generation_ids)
        order = [NO_GROUP, *sorted(set(groups) - {NO_GROUP})]
        return _categorical(groups, order, colours=["#b0b4ba", *(PALETTE[i % len(PALETTE)]
                                                                  for i in range(len(order) - 1))])
    if mode == "time":
        started = np.asarray(data.started, dtype=np.float64)
        if len(started) == 0:
            return Colouring(np.zeros(0, dtype=np.int64), list(TIME_RAMP), [""] * len(TIME_RAMP))
        low, high = float(started.min()), float(started.max())
        width = (high - low) / len(TIME_RAMP) or 1.0
        codes = np.minimum(((started - low) / width).astype(np.int64), len(TIME_RAMP) - 1)
        span = high - low
        labels = [f"from {_stamp(low + i * width, span)}" for i in range(len(TIME_RAMP))]
        return Colouring(codes, list(TIME_RAMP), labels)
    if mode != "workflow":
        raise ValueError(f"unknown colour mode {mode!r}")
    return _categorical(data.workflows, sorted(set(data.workflows)))


def point_sizes(data: MapData, by_score: bool) -> np.ndarray:
    """Marker sizes in pixels: constant, or growing with the top pattern's score (0..1)."""
    if not by_score:
        return np.full(len(data.generation_ids), float(POINT_SIZE))
    scores = np.clip(np.asarray(data.top_scores, dtype=np.float64), 0.0, 1.0)
    return MIN_SCORE_SIZE + (MAX_SCORE_SIZE - MIN_SCORE_SIZE) * scores
