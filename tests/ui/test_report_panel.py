"""The audit report table takes its columns from the pattern library: a pattern added as one file
gets a column titled by its short_name (UI thread, offscreen)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from app.core.audit.levels import PatternVerdict
from app.core.audit.patterns import load_library
from app.core.audit.run import AuditResult, WorkflowAudit
from app.core.audit.signals import workflow_signals
from app.ui.audit.report_panel import FIXED_COLUMNS, ReportTable
from tests.core.pattern_files import NEW_ID, NEW_SHORT_NAME, library_with_new_pattern


def test_a_new_pattern_file_gets_its_column(qtbot: Any, tmp_path: Path) -> None:
    library = load_library(library_with_new_pattern(tmp_path))
    signals = workflow_signals(["2026-03-02T09:00:00+00:00"], [0], ["s"], [None], [None], np.zeros((1, 4)))
    verdicts = [PatternVerdict(pid, library.patterns[pid].name, "high" if pid == NEW_ID else "none", 0.0, 0, 0.0)
                for pid in library.pattern_ids]
    result = AuditResult(library.version, library.content_hash, "test", [WorkflowAudit("tides", 1, signals, verdicts)])
    table = ReportTable()
    qtbot.addWidget(table)
    table.set_result(result, library)
    titles = [table.horizontalHeaderItem(i).text() for i in range(table.columnCount())]
    assert titles == [*FIXED_COLUMNS, *(library.patterns[pid].short_name for pid in library.pattern_ids)]
    assert titles[-1] == NEW_SHORT_NAME and titles[2:5] == ["CoT exfil.", "CoT critique", "Grading"]
    assert table.level("tides", NEW_ID) == "high" and table.level("tides", "autograding") == "none"
    with qtbot.waitSignal(table.pattern_clicked) as clicked:
        table.horizontalHeader().sectionClicked.emit(len(titles) - 1)
    assert clicked.args == [NEW_ID]
