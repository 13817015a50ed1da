"""The Audit view on a seeded ledger, with real embeddings: report, about panels, map, export, cancel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from app.core.audit.embeddings import Encoder
from app.core.audit.levels import LEVELS
from app.core.audit.patterns import PatternLibrary, load_library
from app.core.store import Ledger
from app.ui.audit.audit_view import TAB_GENERATION, TAB_PATTERN, TAB_WORKFLOW, AuditView
from app.ui.audit.map_panel import HIGHLIGHT_SIZE, POINT_SIZE
from app.ui.audit.report_panel import FIXED_COLUMNS
from app.workers.db_executor import DbExecutor
from tests.core.audit_workflows import BENIGN_WORKFLOWS, PATTERN_WORKFLOWS
from tests.core.records import record

AUDIT_TIMEOUT_MS = 120_000
SEEDED = {"grader": PATTERN_WORKFLOWS["autograding"][:12],
          "sweep": PATTERN_WORKFLOWS["templated_sweep"][:12],
          "coding help": BENIGN_WORKFLOWS["coding help"]}


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    """One all-MiniLM-L6-v2 for the module (loaded by the first audit, on its worker thread)."""
    return Encoder()


@pytest.fixture(scope="module")
def library() -> PatternLibrary:
    return load_library()


@pytest.fixture
def seeded(home: Path) -> int:
    """A ledger with three workflows (a grader, a templated sweep, ordinary coding help)."""
    rows = [record(i, workflow=name, prompt=prompt, seed=i)
            for i, (name, prompt) in enumerate(((n, p) for n, ps in SEEDED.items() for p in ps), 1)]
    ledger = Ledger.open(home / "ledger.db")
    try:
        ledger.append_many(rows)
    finally:
        ledger.close()
    return len(rows)


@pytest.fixture
def view(qtbot: Any, home: Path, seeded: int, encoder: Encoder, library: PatternLibrary) -> Iterator[AuditView]:
    executor = DbExecutor(home / "ledger.db")
    executor.start()
    widget = AuditView(executor, home / "ledger.db", encoder=encoder, library=library)
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    widget.show()
    yield widget
    widget.shutdown()
    executor.stop()


def run_to_end(qtbot: Any, view: AuditView) -> None:
    with qtbot.waitSignal(view.audit_finished, timeout=AUDIT_TIMEOUT_MS):
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.running, timeout=5_000)


def test_audit_report_map_detail_and_export(qtbot: Any, view: AuditView, seeded: int, library: PatternLibrary,
                                            tmp_path: Path) -> None:
    run_to_end(qtbot, view)
    assert view.run_button.isEnabled() and not view.progress.isVisible()
    # the map: one point per generation plus the library's exemplars
    exemplars = sum(len(p.exemplars) for p in library.patterns.values())
    assert len(view.map.points.points()) == seeded
    assert len(view.map.exemplars.points()) == exemplars
    assert len(view.map._label_items) == len(library.pattern_ids)
    # the report: every workflow x every pattern, levels as coloured cells
    table = view.table
    assert table.rowCount() == len(SEEDED)
    assert table.columnCount() == len(FIXED_COLUMNS) + len(library.pattern_ids)
    assert sorted(table.item(r, 0).text() for r in range(table.rowCount())) == sorted(SEEDED)
    for row in range(table.rowCount()):
        for column in range(len(FIXED_COLUMNS), table.columnCount()):
            assert table.item(row, column).text() in LEVELS
    assert table.level("sweep", "templated_sweep") in ("medium", "high")
    assert table.level("coding help", "templated_sweep") in ("none", "low")
    # selecting a workflow highlights its points and explains its levels (widget -> map and text)
    table.select_workflow("sweep")
    assert view.tabs.currentIndex() == TAB_WORKFLOW
    sizes = [spot.size() for spot in view.map.points.points()]
    mine = [w == "sweep" for w in view.map.data.workflows]
    assert all(s == HIGHLIGHT_SIZE for s, m in zip(sizes, mine) if m)
    assert all(s == POINT_SIZE for s, m in zip(sizes, mine) if not m)
    text = view.workflow_info.toPlainText()
    assert "resemble" in text and "Benign look-alikes" in text
    # a pattern's about panel from its column header
    column = len(FIXED_COLUMNS) + table.pattern_ids.index("autograding")
    table.horizontalHeader().sectionClicked.emit(column)
    assert view.tabs.currentIndex() == TAB_PATTERN
    about = view.pattern_info.toPlainText()
    assert library.patterns["autograding"].name in about and "Why it is flagged" in about and "Sources" in about
    # colouring by top pattern changes the brushes
    by_workflow = [c.name() for c in view.map.point_brushes()]
    view.map.set_colour_mode("pattern")
    by_pattern = [c.name() for c in view.map.point_brushes()]
    assert by_pattern != by_workflow and "Autograding".lower() in view.map.legend.text().lower()
    # clicking a point opens its generation
    spot = view.map.points.points()[0]
    view.map.points.sigClicked.emit(view.map.points, [spot], None)
    generation_id = view.map.data.generation_ids[0]
    qtbot.waitUntil(lambda: view.detail.row is not None and view.detail.row["id"] == generation_id, timeout=5_000)
    assert view.tabs.currentIndex() == TAB_GENERATION
    # hover text is a prompt excerpt
    assert view.map.data.excerpts[0][:30] in view.map.points.opts['tip'](x=0, y=0, data=0)
    # export: PNG, HTML, Markdown
    png = tmp_path / "map.png"
    assert view.export_map_png(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not QImage(str(png)).isNull()
    view.export_report(tmp_path / "audit.html")
    view.export_report(tmp_path / "audit.md")
    assert "<html" in (tmp_path / "audit.html").read_text(encoding="utf-8")
    assert "| sweep |" in (tmp_path / "audit.md").read_text(encoding="utf-8")


def test_cancel_leaves_the_view_usable(qtbot: Any, view: AuditView, seeded: int) -> None:
    view.run_audit()
    assert view.running and view.cancel_button.isEnabled()
    view.cancel()
    qtbot.waitUntil(lambda: not view.running, timeout=AUDIT_TIMEOUT_MS)
    assert view.run_button.isEnabled() and not view.cancel_button.isEnabled() and not view.progress.isVisible()
    assert view.outcome is None and "cancelled" in view.status.text()
    run_to_end(qtbot, view)  # a second run completes
    assert len(view.map.points.points()) == seeded
