"""Geometry for the audit map, numpy only (Qt-free): pattern regions, the points inside a box or
lasso, the points in a view rectangle, and the coloured density image drawn when too many points
are in view to draw one by one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

REGION_CORE_SHARE = 0.6


def core_points(points: np.ndarray, share: float = REGION_CORE_SHARE) -> np.ndarray:
    """The `share` of points closest to their median: a pattern's region without its outliers, so
    that nine regions in one projection stay readable."""
    if len(points) < 4:
        return points
    distance = np.linalg.norm(points - np.median(points, axis=0), axis=1)
    keep = max(3, int(round(len(points) * share)))
    return points[np.argsort(distance)[:keep]]


def convex_hull(points: np.ndarray) -> np.ndarray:
    """The convex hull of 2-D points (Andrew's monotone chain), closed (first point repeated)."""
    pts = sorted(set(map(tuple, np.round(points, 9))))
    if len(pts) < 3:
        return np.array(pts + pts[:1]) if pts else np.zeros((0, 2))

    def half(seq: list) -> list:
        out: list = []
        for p in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (p[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    hull = lower[:-1] + upper[:-1]
    return np.array(hull + hull[:1])


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Indices of `points` (n x 2) inside `polygon` (m x 2, open or closed), by ray casting.

    Points outside the polygon's bounding box are dropped first, so a small lasso over a million
    points costs little."""
    polygon = np.asarray(polygon, dtype=np.float64)
    if len(points) == 0 or len(polygon) < 3:
        return np.zeros(0, dtype=np.int64)
    low, high = polygon.min(axis=0), polygon.max(axis=0)
    candidates = np.flatnonzero((points[:, 0] >= low[0]) & (points[:, 0] <= high[0])
                                & (points[:, 1] >= low[1]) & (points[:, 1] <= high[1]))
    x, y = points[candidates, 0], points[candidates, 1]
    inside = np.zeros(len(candidates), dtype=bool)
    x1, y1 = polygon[:, 0], polygon[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    for ax, ay, bx, by in zip(x1, y1, x2, y2):
        if ay == by:
            continue
        crosses = (ay > y) != (by > y)
        at = ax + (y - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (x < at)
    return candidates[inside]


class ViewIndex:
    """Points sorted by x, for fast 'which points are in this rectangle' queries.

    Points appended by a refresh (extended) first go to an unsorted tail, scanned directly; the tail
    is merged into the sorted part once it holds TAIL_LIMIT points, so an append costs the new points
    and, now and then, one merge, never a sort of the whole map."""

    TAIL_LIMIT = 8192

    def __init__(self, points: np.ndarray) -> None:
        self.points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self.order = np.argsort(self.points[:, 0], kind="stable")
        self.xs = self.points[self.order, 0]

    @property
    def sorted_count(self) -> int:
        """How many points the sorted part holds (the rest are the tail)."""
        return len(self.order)

    def extended(self, points: np.ndarray) -> ViewIndex:
        """The index of `points`, whose first rows are this index's points (a refresh appends some):
        answers in_rect exactly as ViewIndex(points) would."""
        index = ViewIndex.__new__(ViewIndex)
        index.points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        index.order, index.xs = self.order, self.xs
        tail = len(index.points) - len(index.order)
        if tail > self.TAIL_LIMIT:
            new = np.arange(len(index.order), len(index.points))
            new = new[np.argsort(index.points[new, 0], kind="stable")]
            at = np.searchsorted(index.xs, index.points[new, 0], "right")
            index.order, index.xs = np.insert(index.order, at, new), np.insert(index.xs, at, index.points[new, 0])
        return index

    def in_rect(self, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
        """Indices (into the original points, ascending) inside [x0, x1] x [y0, y1]."""
        lo, hi = np.searchsorted(self.xs, x0, "left"), np.searchsorted(self.xs, x1, "right")
        chosen = self.order[lo:hi]
        ys = self.points[chosen, 1]
        mask = np.zeros(len(self.points), dtype=bool)
        mask[chosen[(ys >= y0) & (ys <= y1)]] = True
        tail = self.points[len(self.order):]
        if len(tail):
            mask[len(self.order):] = (tail[:, 0] >= x0) & (tail[:, 0] <= x1) & (tail[:, 1] >= y0) & (tail[:, 1] <= y1)
        return np.flatnonzero(mask)  # ascending, in O(n) rather than a sort


class DensityGrid:
    """The density image of points in `rect` (x0, x1, y0, y1) on a width x height grid (`shape`):
    per cell, the count of each of the k categories (`colours`: k x 3, 0-255). A cell takes the mean
    colour of its points' categories and an opacity that grows with the log of its count, so that
    sparse and dense areas both show. Points added later (add) update only their cells' counts and
    colours; image() then costs the grid, not the points."""

    def __init__(self, points: np.ndarray, categories: np.ndarray, colours: np.ndarray,
                 rect: tuple[float, float, float, float], shape: tuple[int, int]) -> None:
        self.rect, self.shape = rect, shape
        self.colours = np.asarray(colours, dtype=np.float64).reshape(-1, 3)
        width, height = shape
        k = len(self.colours)
        cells, kept = self._cells(points)
        self.counts = np.bincount(cells * k + np.asarray(categories)[kept],
                                  minlength=width * height * k).reshape(width * height, k)
        self.total = self.counts.sum(axis=1)
        self.rgb = np.zeros((width * height, 3))
        filled = self.total > 0
        self.rgb[filled] = self.counts[filled] @ self.colours / self.total[filled, None]

    def _cells(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The grid cell of each point in the rectangle, and which points those are."""
        width, height = self.shape
        x0, x1, y0, y1 = self.rect
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if len(points) == 0 or x1 <= x0 or y1 <= y0:
            return np.zeros(0, dtype=np.int64), np.zeros(len(points), dtype=bool)
        # floor, not truncation towards zero: a point just left of or below the view is not in its edge cell
        ix = np.floor((points[:, 0] - x0) / (x1 - x0) * width).astype(np.int64)
        iy = np.floor((points[:, 1] - y0) / (y1 - y0) * height).astype(np.int64)
        kept = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height)
        return iy[kept] * width + ix[kept], kept

    def add(self, points: np.ndarray, categories: np.ndarray) -> None:
        """Count more points (in time that grows with them, not with the grid or the points before)."""
        cells, kept = self._cells(points)
        if not len(cells):
            return
        np.add.at(self.counts, (cells, np.asarray(categories)[kept]), 1)
        touched = np.unique(cells)
        self.total[touched] = self.counts[touched].sum(axis=1)
        self.rgb[touched] = self.counts[touched] @ self.colours / self.total[touched, None]

    @property
    def points_counted(self) -> int:
        return int(self.total.sum())

    def image(self) -> np.ndarray:
        """RGBA, height x width x 4, uint8; row 0 is the bottom of the rectangle (y grows upwards)."""
        width, height = self.shape
        image = np.zeros((height, width, 4), dtype=np.uint8)
        filled = self.total > 0
        if filled.any():
            alpha = np.zeros(width * height)
            alpha[filled] = 90 + 165 * np.log1p(self.total[filled]) / np.log1p(self.total.max())
            image[..., :3] = self.rgb.reshape(height, width, 3).astype(np.uint8)
            image[..., 3] = alpha.reshape(height, width).astype(np.uint8)
        return image


def density_image(points: np.ndarray, categories: np.ndarray, colours: np.ndarray, rect: tuple[float, float, float, float],
                  shape: tuple[int, int]) -> np.ndarray:
    """The RGBA image (height x width x 4, uint8) of the points in `rect`: see DensityGrid."""
    return DensityGrid(points, categories, colours, rect, shape).image()


def appended(array: np.ndarray, new: np.ndarray) -> np.ndarray:
    """`array` followed by `new`, in time that grows with `new` (amortised): the result is a view of a
    buffer with room to spare, which the next call fills when `array` is that view. Only for arrays
    that grow from one owner: appending twice to the same view would share the spare room."""
    n, k = len(array), len(new)
    base = array.base
    if (isinstance(base, np.ndarray) and base.dtype == array.dtype and base.shape[1:] == array.shape[1:]
            and len(base) >= n + k and n  # array is the start of base: the same first byte
            and base.__array_interface__["data"][0] == array.__array_interface__["data"][0]):
        base[n:n + k] = new
        return base[:n + k]
    buffer = np.empty((max(2 * (n + k), 1024), *array.shape[1:]), dtype=array.dtype)
    buffer[:n], buffer[n:n + k] = array, new
    return buffer[:n + k]


def separate_labels(anchors: Sequence[tuple[float, float]], sizes: Sequence[tuple[float, float]],
                    align: Sequence[float], gap: float = 0.0) -> list[tuple[float, float]]:
    """Positions for labels so that no two boxes overlap, each as near its anchor as it can be.

    A label i is a box of sizes[i] (width, height, in the same units as the anchors: data units at
    the current zoom), placed with align[i] of its width left of its x and centred on its y. Labels
    are placed from the lowest anchor up; one that would overlap a placed box moves up just past it
    (plus `gap`), and is checked again, so the result has no overlap at all.
    """
    order = sorted(range(len(anchors)), key=lambda i: (anchors[i][1], anchors[i][0]))
    placed: list[tuple[float, float, float, float]] = []  # left, right, bottom, top
    out: list[tuple[float, float]] = [(0.0, 0.0)] * len(anchors)
    for i in order:
        x, y = anchors[i]
        width, height = sizes[i]
        left = x - align[i] * width
        moved = True
        while moved:
            moved = False
            for p_left, p_right, p_bottom, p_top in placed:
                if left < p_right and p_left < left + width and y - height / 2 < p_top and p_bottom < y + height / 2:
                    y = p_top + height / 2 + gap
                    moved = True
        placed.append((left, left + width, y - height / 2, y + height / 2))
        out[i] = (x, y)
    return out
