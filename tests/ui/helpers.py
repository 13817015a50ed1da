"""Helpers for the GUI tests: settings for quick runs, seeded ledger rows, reading rows, dialogs."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QMessageBox

from app.core.models.runner import LoadOptions
from app.core.models.sampling import SamplingParams
from app.core.store import Ledger
from app.ui.main_window import MainWindow
from app.ui.settings import AppSettings

TEST_N_CTX = 1024
TEST_MAX_TOKENS = 12
LOAD_TIMEOUT_MS = 60_000
TURN_TIMEOUT_MS = 60_000


def seed_settings(settings: AppSettings, max_tokens: int = TEST_MAX_TOKENS) -> None:
    """Small context and short answers, so that tests are quick."""
    settings.set_load_options(LoadOptions(n_ctx=TEST_N_CTX))
    settings.set_sampling(SamplingParams(max_tokens=max_tokens))
    settings.sync()


def ledger_rows(home: Path, sql: str = "SELECT * FROM generations ORDER BY id", params: tuple = ()) -> list[dict]:
    """Rows read straight from the test's ledger file (a separate connection)."""
    conn = sqlite3.connect(home / "ledger.db")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def seed_rows(home: Path, count: int, **fields: Any) -> None:
    """Append `count` synthetic generation rows through the real Ledger (chunks of 5,000)."""
    ledger = Ledger.open(home / "ledger.db")
    try:
        batch = []
        for number in range(1, count + 1):
            row = {"source": "batch", "workflow": f"wf-{number % 3}", "mode": "completion",
                   "prompt": f"prompt number {number} about {'zebras' if number % 10 == 0 else 'rivers'}",
                   "response": f"answer {number}", "status": "ok" if number % 7 else "error",
                   "model_name": "seeded", "model_sha256": "ab" * 32, "completion_tokens": 3}
            row.update(fields)
            batch.append(row)
            if len(batch) == 5_000:
                ledger.append_many(batch)
                batch = []
        ledger.append_many(batch)
    finally:
        ledger.close()


def open_dialogs(window: MainWindow, name: str) -> list[QMessageBox]:
    """Visible message boxes of a kind (dialogs.ERROR_DIALOG or dialogs.INFO_DIALOG)."""
    return [box for box in window.findChildren(QMessageBox) if box.objectName() == name and box.isVisible()]
