"""Audit map redraw: pan and zoom with 100,000 and 1,000,000 points (offscreen raster).

Synthetic 2-D clusters stand in for a projection (the redraw does not depend on how points were
placed). For each size it reports: the first draw (set_data, level of detail, paint); a pan step
and a zoom step while moving (the view transform and a repaint of what is drawn); the level-of-detail
update once the view settles (density image or visible points, then a repaint); and a pan step
zoomed in far enough that the points are drawn one by one; and, side by side, a pan step of a bare
pyqtgraph ScatterPlotItem holding every point; and a refresh: one new generation appended to the map
shown (the UI thread's part of what a chat turn costs with the Audit view open). Target: a pan step
under 50 ms at 100k; a refresh under 50 ms at 1,000,000.

    QT_QPA_PLATFORM=offscreen python tests/bench/bench_audit_map.py [--sizes 100000 1000000] [--steps 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication  # noqa: E402

from app.core.audit.map_data import MapData  # noqa: E402
from app.core.audit.map_geometry import appended  # noqa: E402
from app.ui.audit.map_panel import MapPanel  # noqa: E402

PATTERNS = ["cot_exfiltration", "autograding", "templated_sweep", "identity_probe", "persona_cloning"]


def synthetic(n: int, rng: np.random.Generator) -> MapData:
    """n generations in 30 clusters, 12 workflows, 5 patterns, with exemplars."""
    centres = rng.uniform(-20, 20, (30, 2))
    which = rng.integers(0, 30, n)
    points = centres[which] + rng.normal(0, 1.2, (n, 2))
    scores = rng.uniform(0, 1, (n, len(PATTERNS))).astype(np.float32)
    top = scores.argmax(axis=1)
    exemplar_patterns = [p for p in PATTERNS for _ in range(25)]
    return MapData(
        generation_ids=list(range(1, n + 1)), workflows=[f"workflow-{w % 12}" for w in which],
        top_patterns=[PATTERNS[i] for i in top], top_scores=scores[np.arange(n), top].astype(np.float64),
        excerpts=["prompt"] * n, points=points, exemplar_points=rng.uniform(-20, 20, (len(exemplar_patterns), 2)),
        exemplar_patterns=exemplar_patterns, pattern_names={p: p.replace("_", " ") for p in PATTERNS},
        models=["Gemma"] * n, started=np.linspace(1.77e9, 1.77e9 + 86400, n), scores=scores,
        levels=["low"] * n, method="pca")


def timed(action, repeat: int) -> list[float]:  # noqa: ANN001
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        out.append((time.perf_counter() - start) * 1000)
    return out


def report(label: str, values: list[float]) -> None:
    print(f"  {label:<44} median {statistics.median(values):7.1f} ms   max {max(values):7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    for n in args.sizes:
        data = synthetic(n, rng)
        panel = MapPanel()
        panel.resize(1000, 700)
        panel.show()
        app.processEvents()
        viewport = panel.plot.viewport()
        start = time.perf_counter()
        panel.set_data(data)
        panel.update_lod()
        viewport.repaint()
        first = (time.perf_counter() - start) * 1000
        print(f"{n:,} points (density image: {panel.density_shown}, points drawn: {len(panel.shown):,})")
        print(f"  {'first draw':<44} {first:7.1f} ms")
        box = panel.view_box

        def pan(step: float = 0.03) -> None:
            (x0, x1), (y0, y1) = box.viewRange()
            dx = (x1 - x0) * step
            box.setRange(xRange=(x0 + dx, x1 + dx), yRange=(y0, y1), padding=0)
            viewport.repaint()

        sign = [1.0]

        def zoom() -> None:
            sign[0] = -sign[0]
            box.scaleBy((1.1 ** sign[0], 1.1 ** sign[0]))
            viewport.repaint()

        def settle() -> None:
            panel.update_lod()
            viewport.repaint()

        grown = [data]
        for _ in range(args.steps):  # made on the audit thread in the app: not timed here
            before = grown[-1]
            k = len(before.generation_ids)
            grown.append(replace(
                before, generation_ids=before.generation_ids + [k + 1], workflows=before.workflows + [before.workflows[0]],
                top_patterns=before.top_patterns + [before.top_patterns[0]],
                top_scores=appended(before.top_scores, [0.5]), excerpts=before.excerpts + ["new prompt"],
                points=appended(before.points, before.points[:1] + 0.1), models=before.models + ["Gemma"],
                started=appended(before.started, before.started[-1:]), scores=appended(before.scores, before.scores[:1]),
                levels=before.levels + ["low"]))
        shown = iter(grown[1:])

        def refresh() -> None:  # what the Audit view shows after a chat turn: one new point appended
            panel.set_data(next(shown), keep_view=True)
            viewport.repaint()

        report("refresh: one new generation, map redrawn", timed(refresh, args.steps))
        report("pan step while moving", timed(pan, args.steps))
        report("zoom step while moving", timed(zoom, args.steps))
        report("level-of-detail update when the view settles", timed(settle, 5))
        (x0, x1), (y0, y1) = box.viewRange()
        cx, cy = data.points[0]
        w = (x1 - x0) / 4
        while True:  # zoom in on one cluster until its points are drawn one by one
            box.setRange(xRange=(cx - w, cx + w), yRange=(cy - w, cy + w), padding=0)
            panel.update_lod()
            viewport.repaint()
            if not panel.density_shown:
                break
            w /= 2
        print(f"  zoomed in: density image {panel.density_shown}, {len(panel.shown):,} points drawn one by one")
        report("pan step zoomed in (points)", timed(pan, args.steps))
        report("level-of-detail update zoomed in", timed(settle, 5))
        panel.close()
        panel.deleteLater()
        app.processEvents()
        baseline(app, data, args.steps)


def baseline(app: QApplication, data: MapData, steps: int) -> None:
    """Side by side: a bare pyqtgraph ScatterPlotItem of every point (one brush), no level of detail."""
    import pyqtgraph as pg  # noqa: PLC0415

    plot = pg.PlotWidget()
    plot.resize(1000, 700)
    plot.show()
    app.processEvents()
    viewport = plot.viewport()
    start = time.perf_counter()
    item = pg.ScatterPlotItem(pos=data.points, size=7, pen=None, brush=pg.mkBrush("#1f77b4"))
    plot.addItem(item)
    plot.autoRange()
    viewport.repaint()
    print(f"  {'baseline: bare ScatterPlotItem, first draw':<44} {(time.perf_counter() - start) * 1000:7.1f} ms")
    box = plot.getViewBox()

    def pan() -> None:
        (x0, x1), (y0, y1) = box.viewRange()
        dx = (x1 - x0) * 0.03
        box.setRange(xRange=(x0 + dx, x1 + dx), yRange=(y0, y1), padding=0)
        viewport.repaint()

    report("baseline: bare ScatterPlotItem, pan step", timed(pan, max(3, steps // 4)))
    plot.close()
    plot.deleteLater()
    app.processEvents()


if __name__ == "__main__":
    main()
