"""The audit map's Qt-free parts: projections (PCA fit, cache on disk, placing new points without
refitting), geometry (lasso, view index, density image), the timeline's bins and selection export."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from app.core.audit.map_data import epoch_seconds
from app.core.audit.map_geometry import ViewIndex, convex_hull, density_image, points_in_polygon
from app.core.audit.projection import FittedProjection, PcaModel, ProjectionStore, fit_projection, fit_projection_by_key
from app.core.progress import Progress, drive
from app.core.audit.selection import export_selection
from app.core.audit.timeline import build_timeline, extend_timeline, pick_unit
from app.core.cancel import CancelToken
from app.core.store import Ledger, open_db
from tests.core.records import record

RNG = np.random.default_rng(7)


def clusters(n: int = 300, dim: int = 32) -> np.ndarray:
    """Three well-separated clusters of unit vectors."""
    centres = np.eye(dim)[:3] * 5
    data = np.vstack([centres[i % 3] + RNG.normal(0, 0.3, dim) for i in range(n)]).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def fitted(method: str, vectors: np.ndarray, cancel: CancelToken | None = None,
           root: Path | None = None) -> FittedProjection | None:
    items: list[Progress] = []
    projection = drive(fit_projection(method, vectors, cancel or CancelToken(), root), items.append)
    assert all(isinstance(i, Progress) for i in items)
    return projection


def test_pca_separates_clusters_and_places_new_points_with_the_same_transform(tmp_path: Path) -> None:
    data = clusters()
    projection = fitted("pca", data)
    assert projection is not None and projection.method == "pca"
    keys = [f"k{i}" for i in range(len(data))]
    items: list[Progress] = []
    placed = drive(projection.place(keys, data), items.append)
    assert placed.shape == (len(data), 2) and items[0] == Progress("placing", len(data), len(data))
    centres = [placed[i::3].mean(axis=0) for i in range(3)]
    spread = max(placed[i::3].std(axis=0).max() for i in range(3))
    assert min(np.linalg.norm(a - b) for a in centres for b in centres if a is not b) > 3 * spread
    # known keys are not transformed again (their rows are not even read)
    again: list[Progress] = []
    assert np.allclose(drive(projection.place(keys, np.zeros((len(keys), 0))), again.append), placed)
    assert not again


def test_store_keeps_projection_and_coordinates_on_disk(tmp_path: Path) -> None:
    data = clusters(60)
    store = ProjectionStore(tmp_path)
    projection = fitted("pca", data)
    store.put("a" * 64, projection)
    placed = drive(projection.place(["x", "y"], data[:2]))
    store.save_coords("a" * 64, "pca")
    other = ProjectionStore(tmp_path).get("a" * 64, "pca")
    assert other is not None and other is not projection and set(other.coords) == {"x", "y"}
    assert np.allclose(drive(other.place(["x", "y"], data[:2])), placed)
    assert np.allclose(other.transform(data[:5]), projection.transform(data[:5]))
    assert ProjectionStore(tmp_path).get("b" * 64, "pca") is None
    (tmp_path / "projections" / f"{'a' * 16}-pca-model.npz").write_bytes(b"not an npz")
    assert ProjectionStore(tmp_path).get("a" * 64, "pca") is None  # a broken cache is refitted, not fatal


def test_projection_rejects_bad_input_and_honours_cancel() -> None:
    with pytest.raises(ValueError, match="unknown projection method 'tsne'"):
        list(fit_projection("tsne", clusters(10)))
    with pytest.raises(ValueError, match="at least 3 vectors"):
        list(fit_projection("pca", clusters(2)))
    cancel = CancelToken()
    cancel.cancel()
    projection = fitted("pca", clusters(30))
    assert drive(projection.place(["a"], clusters(3)[:1], cancel)) is None
    assert fitted("umap", clusters(30), cancel) is None  # stops before importing umap


def test_lasso_view_index_and_density_image() -> None:
    points = RNG.uniform(0, 10, (20_000, 2))
    square = np.array([(2, 2), (4, 2), (4, 4), (2, 4)])
    inside = points_in_polygon(points, square)
    expected = np.flatnonzero((points[:, 0] > 2) & (points[:, 0] < 4) & (points[:, 1] > 2) & (points[:, 1] < 4))
    assert set(inside) == set(expected)
    triangle = np.array([(0, 0), (10, 0), (0, 10)])
    assert set(points_in_polygon(points, triangle)) == set(np.flatnonzero(points.sum(axis=1) < 10))
    assert len(points_in_polygon(points, square[:2])) == 0
    index = ViewIndex(points)
    assert list(index.in_rect(2, 4, 2, 4)) == list(expected)
    codes = (points[:, 0] > 5).astype(np.int64)
    image = density_image(points, codes, np.array([[255, 0, 0], [0, 0, 255]]), (0, 10, 0, 10), (20, 10))
    assert image.shape == (10, 20, 4) and (image[..., 3] > 0).all()
    assert image[:, :9, 0].min() == 255 and image[:, 11:, 2].min() == 255  # left red, right blue
    empty = density_image(points, codes, np.array([[255, 0, 0], [0, 0, 255]]), (20, 30, 0, 10), (8, 8))
    assert not empty.any()
    hull = convex_hull(np.array([(0, 0), (1, 0), (1, 1), (0, 1), (0.5, 0.5)]))
    assert len(hull) == 5 and tuple(hull[0]) == tuple(hull[-1])


def test_timeline_bins_by_hour_and_day() -> None:
    start = epoch_seconds("2026-03-02T09:10:00+00:00")
    started = np.array([start, start + 60, start + 3600, start + 7300, start + 7400])
    workflows = ["a", "b", "a", "a", "b"]
    scores = np.array([[0.2, 1.0], [0.4, 0.0], [0.6, 0.5], [0.1, 0.1], [0.3, 0.3]])
    timeline = build_timeline(started, workflows, scores, ["p", "q"], "hour")
    assert timeline.workflows == ["a", "b"] and timeline.seconds == 3600
    assert timeline.counts.tolist() == [[1, 1, 1], [1, 0, 1]]
    assert timeline.bin_starts[0] == epoch_seconds("2026-03-02T09:00:00+00:00")
    assert np.allclose(timeline.pattern_means[0], [0.3, 0.6, 0.2])
    day = build_timeline(started, workflows, scores, ["p", "q"], "day")
    assert day.counts.tolist() == [[3], [2]] and pick_unit(started) == "hour"
    assert pick_unit(np.array([0.0, 10 * 86400])) == "day"
    with pytest.raises(ValueError, match="unknown timeline unit 'week'"):
        build_timeline(started, workflows, scores, ["p", "q"], "week")
    assert epoch_seconds("2026-03-02T09:10:00") == start and epoch_seconds(None) == 0.0


def test_selection_export_jsonl_and_csv(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.db")
    try:
        ledger.append_many([record(i, workflow="w", prompt=f"prompt, with \"quotes\"\nand lines {i}") for i in range(4)])
    finally:
        ledger.close()
    db = open_db(tmp_path / "ledger.db")
    try:
        audit = {2: {"top_pattern": "autograding", "top_score": 0.7, "level": "low"}}
        assert export_selection(db, [2, 3], tmp_path / "sel.jsonl", audit) == 2
        rows = [json.loads(line) for line in (tmp_path / "sel.jsonl").read_text(encoding="utf-8").splitlines()]
        assert [r["id"] for r in rows] == [2, 3] and rows[0]["top_pattern"] == "autograding"
        assert rows[1]["prompt"] == "prompt, with \"quotes\"\nand lines 2"
        export_selection(db, [2, 3], tmp_path / "sel.csv", audit)
        with (tmp_path / "sel.csv").open(encoding="utf-8", newline="") as handle:
            parsed = list(csv.DictReader(handle))
        assert [r["id"] for r in parsed] == ["2", "3"] and parsed[1]["prompt"] == rows[1]["prompt"]
        with pytest.raises(ValueError, match="use .jsonl or .csv"):
            export_selection(db, [2], tmp_path / "sel.xlsx")
    finally:
        db.close()


def test_a_timeline_extended_with_new_points_is_the_one_built_from_all() -> None:
    rng = np.random.default_rng(3)
    start = epoch_seconds("2026-03-02T09:10:00+00:00")
    started = np.sort(start + rng.uniform(0, 30 * 3600, 400))
    workflows = [f"w{i % 4}" for i in range(400)]
    scores = rng.uniform(0, 1, (400, 3))
    for shown in (399, 300, 8):  # new points in the last bin, in new bins after it
        drawn = build_timeline(started[:shown], workflows[:shown], scores[:shown], ["p", "q", "r"], "hour")
        extended = extend_timeline(drawn, started[shown:], workflows[shown:], scores[shown:])
        whole = build_timeline(started, workflows, scores, ["p", "q", "r"], "hour")
        assert extended is not None and extended.points == whole.points == 400
        assert np.array_equal(extended.bin_starts, whole.bin_starts) and extended.workflows == whole.workflows
        assert np.array_equal(extended.counts, whole.counts)
        assert np.allclose(extended.pattern_means, whole.pattern_means, equal_nan=True)
    drawn = build_timeline(started[:300], workflows[:300], scores[:300], ["p", "q", "r"], "hour")
    # a workflow it has no row for, or a point before its first bin: build it again
    assert extend_timeline(drawn, started[300:], ["new"] * 100, scores[300:]) is None
    assert extend_timeline(drawn, started[:1] - 7200, workflows[:1], scores[:1]) is None


def test_pca_fitted_a_chunk_at_a_time_is_the_pca_of_all_the_vectors() -> None:
    vectors = clusters(40)
    whole = PcaModel.fit(vectors)
    streamed = PcaModel.fit_chunks(vectors[start:start + 7] for start in range(0, len(vectors), 7))
    assert np.allclose(whole.mean, vectors.astype(np.float64).mean(axis=0))
    assert np.allclose(streamed.mean, whole.mean) and np.allclose(streamed.components, whole.components, atol=1e-9)
    # the components are the top two principal axes: the variance along them is the largest there is
    centred = vectors - whole.mean
    variance = ((centred @ whole.components.T) ** 2).sum(axis=0)
    assert variance[0] >= variance[1] >= ((centred @ np.linalg.svd(centred)[2][2]) ** 2).sum() - 1e-9
    keys = [f"k{i}" for i in range(len(vectors))]
    fitted = drive(fit_projection_by_key("pca", keys, lambda some: vectors[[int(k[1:]) for k in some]]))
    assert np.allclose(fitted.model.components, whole.components, atol=1e-9)
    with pytest.raises(ValueError, match="at least 3 vectors"):
        drive(fit_projection_by_key("pca", keys[:2], lambda some: vectors[:len(some)]))
