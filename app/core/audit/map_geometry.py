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
    """Points sorted by x, for fast 'which points are in this rectangle' queries."""

    def __init__(self, points: np.ndarray) -> None:
        self.points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self.order = np.argsort(self.points[:, 0], kind="stable")
        self.xs = self.points[self.order, 0]

    def in_rect(self, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
        """Indices (into the original points, ascending) inside [x0, x1] x [y0, y1]."""
        lo, hi = np.searchsorted(self.xs, x0, "left"), np.searchsorted(self.xs, x1, "right")
        chosen = self.order[lo:hi]
        ys = self.points[chosen, 1]
        mask = np.zeros(len(self.points), dtype=bool)
        mask[chosen[(ys >= y0) & (ys <= y1)]] = True
        return np.flatnonzero(mask)  # ascending, in O(n) rather than a sort


def density_image(points: np.ndarray, categories: np.ndarray, colours: np.ndarray, rect: tuple[float, float, float, float],
                  shape: tuple[int, int]) -> np.ndarray:
    """An RGBA image (height x width x 4, uint8) of the points in `rect` (x0, x1, y0, y1).

    Each pixel takes the mean colour of its points' categories (`colours`: k x 3, 0-255), and an
    opacity that grows with the log of its count, so that sparse and dense areas both show.
    Row 0 is the bottom of the rectangle (y grows upwards, as in the plot)."""
    width, height = shape
    x0, x1, y0, y1 = rect
    image = np.zeros((height, width, 4), dtype=np.uint8)
    if len(points) == 0 or x1 <= x0 or y1 <= y0:
        return image
    ix = ((points[:, 0] - x0) / (x1 - x0) * width).astype(np.int64)
    iy = ((points[:, 1] - y0) / (y1 - y0) * height).astype(np.int64)
    keep = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height)
    cells = iy[keep] * width + ix[keep]
    k = len(colours)
    counts = np.bincount(cells * k + categories[keep], minlength=width * height * k).reshape(width * height, k)
    total = counts.sum(axis=1)
    filled = total > 0
    rgb = np.zeros((width * height, 3))
    rgb[filled] = counts[filled] @ np.asarray(colours, dtype=np.float64) / total[filled, None]
    alpha = np.zeros(width * height)
    if filled.any():
        alpha[filled] = 90 + 165 * np.log1p(total[filled]) / np.log1p(total.max())
    image[..., :3] = rgb.reshape(height, width, 3).astype(np.uint8)
    image[..., 3] = alpha.reshape(height, width).astype(np.uint8)
    return image


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
