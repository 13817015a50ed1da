"""The audit map shown while new generations arrive: a refresh appends points to the map panel in
time that grows with the new points, and what it shows is what a panel given the whole map shows
(app/ui/audit/map_panel.py, MapPanel._append)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from app.core.audit.map_data import MapData
from app.ui.audit.map_panel import MapPanel
from app.ui.audit.map_style import COLOUR_MODES
from tests.bench.bench_audit_map import synthetic

SHOWN, ADDED = 30_000, 25


def _prefix(data: MapData, n: int) -> MapData:
    """The map as it was before the last points were added (the same exemplar arrays, as a refresh keeps)."""
    return replace(data, generation_ids=data.generation_ids[:n], workflows=data.workflows[:n],
                   top_patterns=data.top_patterns[:n], top_scores=data.top_scores[:n], excerpts=data.excerpts[:n],
                   points=data.points[:n], models=data.models[:n], started=data.started[:n], scores=data.scores[:n],
                   levels=data.levels[:n], groups=data.groups[:n])


def _panel(qtbot: Any, mode: str) -> MapPanel:
    panel = MapPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    panel.colour_by.setCurrentIndex(panel.colour_by.findData(mode))
    return panel


@pytest.mark.parametrize("mode", list(COLOUR_MODES))
def test_a_refresh_shows_what_a_new_map_shows(qtbot: Any, mode: str) -> None:
    data = synthetic(SHOWN + ADDED, np.random.default_rng(5))
    workflows = list(data.workflows)
    workflows[-1] = "a workflow new in this refresh" if mode == "group" else workflows[-1]
    data = replace(data, workflows=workflows, groups=[f"group {i % 3}" for i in range(len(data.generation_ids))])
    refreshed, fresh = _panel(qtbot, mode), _panel(qtbot, mode)
    refreshed.set_data(_prefix(data, SHOWN))
    refreshed.set_data(data, keep_view=True)
    fresh.set_data(data)
    assert refreshed._colouring.codes.tolist() == fresh._colouring.codes.tolist()
    assert (refreshed._colouring.colours, refreshed._colouring.labels) == (fresh._colouring.colours,
                                                                           fresh._colouring.labels)
    assert refreshed._sizes.tolist() == fresh._sizes.tolist()
    assert refreshed._workflow_names == fresh._workflow_names
    assert refreshed._workflow_codes.tolist() == fresh._workflow_codes.tolist()
    rect = (-5.0, 9.0, -7.0, 3.0)
    assert np.array_equal(refreshed._index.in_rect(*rect), fresh._index.in_rect(*rect))
    qtbot.waitUntil(lambda: not refreshed._lod_timer.isActive(), timeout=2_000)
    assert refreshed.density_shown
    image = refreshed.density.image.copy()
    refreshed.update_lod()  # the whole redraw, as after a pan, over every point
    assert np.array_equal(image, refreshed.density.image)


def test_refreshes_in_a_row_add_only_their_points(qtbot: Any) -> None:
    data = synthetic(SHOWN + 3 * ADDED, np.random.default_rng(6))
    panel = _panel(qtbot, "workflow")
    panel.set_data(_prefix(data, SHOWN))
    shown_counts = panel._density_grid.points_counted
    for step in (1, 2, 3):
        panel.set_data(_prefix(data, SHOWN + step * ADDED), keep_view=True)
        assert not panel._lod_timer.isActive()  # the density image took the new counts directly
        (x0, x1), (y0, y1) = panel.view_box.viewRange()
        new = data.points[SHOWN + (step - 1) * ADDED:SHOWN + step * ADDED]
        inside = ((new[:, 0] >= x0) & (new[:, 0] < x1) & (new[:, 1] >= y0) & (new[:, 1] < y1)).sum()
        shown_counts += inside
        assert panel._density_grid.points_counted == shown_counts
    assert "30,075 generations" in panel.method_label.text()


def test_a_shown_timeline_bins_only_a_refresh_s_points(qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.audit.patterns import load_library
    from app.ui.audit import timeline_panel
    from app.ui.audit.timeline_panel import TimelinePanel

    data, library = synthetic(SHOWN + ADDED, np.random.default_rng(7)), load_library()  # over one day: hourly bins
    panels = []
    for _ in range(2):
        panel = TimelinePanel()
        qtbot.addWidget(panel)
        panel.show()
        panels.append(panel)
    refreshed, fresh = panels
    refreshed.set_data(_prefix(data, SHOWN), library)
    built = timeline_panel.build_timeline
    monkeypatch.setattr(timeline_panel, "build_timeline", lambda *a, **k: pytest.fail("the whole timeline was rebuilt"))
    refreshed.set_data(data, library, lazy=True)  # what a refresh does
    monkeypatch.setattr(timeline_panel, "build_timeline", built)
    fresh.set_data(data, library)
    assert refreshed.timeline.points == fresh.timeline.points == SHOWN + ADDED
    assert np.array_equal(refreshed.timeline.counts, fresh.timeline.counts)
    assert np.allclose(refreshed.timeline.pattern_means, fresh.timeline.pattern_means, equal_nan=True)
    # the drawn bars and curves, updated in place, show what a panel drawn from scratch shows
    assert [(list(b.opts["x0"]), list(b.opts["y0"]), list(b.opts["height"])) for b in refreshed.bars()] == \
        [(list(b.opts["x0"]), list(b.opts["y0"]), list(b.opts["height"])) for b in fresh.bars()]
    assert [np.allclose(a.yData, b.yData, equal_nan=True) for a, b in zip(refreshed._curves, fresh._curves)] == \
        [True] * len(fresh._curves) and len(fresh._curves) == data.scores.shape[1]
