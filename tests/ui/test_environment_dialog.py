"""Help > Environment check: the doctor's checks in a table, filled from a worker thread."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from PySide6.QtGui import QGuiApplication

from app.core.models.default_model import default_model_path
from app.core.models.registry import register_model
from app.core.store import Ledger
from app.ui.environment_dialog import EnvironmentDialog
from tests.core.records import record

TIMEOUT_MS = 60_000


def rows(dialog: EnvironmentDialog) -> dict[str, tuple[str, str, str]]:
    table = dialog.table
    return {table.item(r, 1).text(): (table.item(r, 0).text(), table.item(r, 2).text(), table.item(r, 3).text())
            for r in range(table.rowCount())}


def test_checks_fill_the_table_and_a_broken_chain_shows_its_fix(home: Path, qtbot: Any) -> None:
    os.chmod(home, 0o700)
    ledger = Ledger.open(home / "ledger.db")
    register_model(ledger.db, default_model_path(ledger.db))
    ledger.append_many([record(i) for i in range(1, 4)])
    ledger.close()

    dialog = EnvironmentDialog(home=home)
    qtbot.addWidget(dialog)
    dialog.quick.setChecked(True)
    with qtbot.waitSignal(dialog.checks_done, timeout=TIMEOUT_MS) as done:
        dialog.run_checks()
    shown = rows(dialog)
    assert shown["Ledger chain"][0] == "ok" and "3 rows" in shown["Ledger chain"][1]
    assert shown["llama.cpp"][0] == "ok" and done.args[0].ok
    assert shown["Generation"][0] == "ok" and "child process" in shown["Generation"][1]  # a real one
    assert "AMX path avoided" in shown["CPU path"][1]
    assert len(shown) == len(done.args[0].checks)

    conn = sqlite3.connect(home / "ledger.db")
    conn.execute("UPDATE generations SET response = 'changed' WHERE id = 2")
    conn.commit()
    conn.close()
    with qtbot.waitSignal(dialog.checks_done, timeout=TIMEOUT_MS) as again:
        dialog.run_button.click()
    status, found, fix = rows(dialog)["Ledger chain"]
    assert status == "problem" and "row 2" in found and "backup" in fix
    assert not again.args[0].ok and "problem" in dialog.summary.text()
    dialog.copy_report()
    assert "FAIL  Ledger chain" in QGuiApplication.clipboard().text()


def test_closing_during_a_run_stops_the_worker(home: Path, qtbot: Any) -> None:
    dialog = EnvironmentDialog(home=home)
    qtbot.addWidget(dialog)
    dialog.run_checks()
    dialog.reject()
    assert not dialog.jobs.busy
