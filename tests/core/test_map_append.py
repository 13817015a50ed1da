"""A refresh appends points to the audit map: the index, density counts and growing arrays it uses
answer exactly as if the whole map had been built again (app/core/audit/map_geometry.py)."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.audit.map_data import extends
from app.core.audit.map_geometry import DensityGrid, ViewIndex, appended, density_image
from tests.bench.bench_audit_map import synthetic


@pytest.mark.parametrize("added", [1, 37, ViewIndex.TAIL_LIMIT + 5])  # tail only, and a merge
def test_an_extended_view_index_answers_as_a_new_one(added: int) -> None:
    rng = np.random.default_rng(7)
    points = rng.normal(0, 5, (20_000 + added, 2))
    points[-3:] = points[:3]  # equal x values on both sides of the join
    index = ViewIndex(points[:20_000]).extended(points)
    fresh = ViewIndex(points)
    for _ in range(40):
        x0, y0 = rng.uniform(-12, 8, 2)
        rect = (x0, x0 + rng.uniform(0, 10), y0, y0 + rng.uniform(0, 10))
        assert np.array_equal(index.in_rect(*rect), fresh.in_rect(*rect))
    assert index.sorted_count == (20_000 if added <= ViewIndex.TAIL_LIMIT else len(points))
    twice = ViewIndex(points[:20_000]).extended(points[:20_010]).extended(points)
    assert np.array_equal(twice.in_rect(-3, 3, -3, 3), fresh.in_rect(-3, 3, -3, 3))


def test_appended_grows_in_place_and_leaves_earlier_views_alone() -> None:
    first = appended(np.zeros(0, dtype=np.int64), np.arange(5))
    second = appended(first, np.array([5, 6]))
    third = appended(second, np.array([7]))
    assert first.tolist() == [0, 1, 2, 3, 4] and second.tolist() == list(range(7)) and third.tolist() == list(range(8))
    assert np.shares_memory(first, third)  # no copy: the buffer had room
    big = appended(third, np.arange(8, 3000))  # past the room: a new, larger buffer
    assert big.tolist() == list(range(3000)) and not np.shares_memory(big, third)
    rows = appended(np.zeros((0, 2)), np.ones((3, 2)))
    assert appended(rows, np.full((2, 2), 2.0)).tolist() == [[1, 1]] * 3 + [[2, 2]] * 2
    plain = np.arange(4)  # an array with no spare room is copied, never written past its end
    assert appended(plain, np.array([9])).tolist() == [0, 1, 2, 3, 9] and plain.tolist() == [0, 1, 2, 3]


def test_a_density_grid_given_more_points_equals_one_made_with_them() -> None:
    rng = np.random.default_rng(3)
    points, codes = rng.normal(0, 3, (5_000, 2)), rng.integers(0, 4, 5_000)
    points[:5] = [[-4.0 - 1e-9, 0], [-4.0, 0], [3.99, 4.99], [0, -3.0 - 1e-9], [0, 5.0]]  # on and just off the edges
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [90, 90, 90]])
    rect, shape = (-4.0, 4.0, -3.0, 5.0), (40, 30)
    whole = DensityGrid(points, codes, colours, rect, shape)
    grown = DensityGrid(points[:4_000], codes[:4_000], colours, rect, shape)
    grown.add(points[4_000:4_003], codes[4_000:4_003])
    grown.add(points[4_003:], codes[4_003:])
    assert np.array_equal(whole.counts, grown.counts) and np.array_equal(whole.image(), grown.image())
    inside = (points[:, 0] >= -4) & (points[:, 0] < 4) & (points[:, 1] >= -3) & (points[:, 1] < 5)
    assert whole.points_counted == inside.sum()
    assert np.array_equal(whole.image(), density_image(points, codes, colours, rect, shape))


def test_a_refreshed_map_extends_the_one_shown() -> None:
    data = synthetic(100, np.random.default_rng(1))
    from dataclasses import replace

    grown = replace(data, generation_ids=data.generation_ids + [500], points=np.vstack([data.points, [[0, 0]]]))
    assert extends(data, grown) and not extends(grown, data)
    assert not extends(data, replace(grown, exemplar_points=data.exemplar_points.copy()))
    assert not extends(data, replace(grown, generation_ids=[0] + grown.generation_ids[1:]))
