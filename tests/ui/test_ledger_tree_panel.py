"""The Ledger view shows the Merkle tree's size and the latest signed checkpoint, and copies it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QApplication

from app.core.provenance.signing import load_or_create_key
from app.core.store import Ledger
from app.core.store.checkpoint import latest_checkpoint
from tests.ui.helpers import seed_rows


def test_tree_size_and_latest_checkpoint_are_shown_and_copied(qtbot: Any, home: Path, make_window: Any) -> None:
    seed_rows(home, 6)
    window = make_window()
    panel = window.ledger.tree
    window.ledger.refresh()
    qtbot.waitUntil(lambda: panel.size_label.text() == "Merkle tree: 6 rows", timeout=10_000)
    assert "no checkpoint signed yet" in panel.checkpoint_label.text() and not panel.copy_button.isEnabled()

    ledger = Ledger.open(home / "ledger.db")
    signed = latest_checkpoint(ledger.db.conn, load_or_create_key())
    ledger.close()
    seed_rows(home, 2)
    window.ledger.refresh()
    qtbot.waitUntil(lambda: panel.size_label.text() == "Merkle tree: 8 rows", timeout=10_000)
    assert panel.checkpoint_label.text().startswith("latest checkpoint: 6 rows, root ")
    assert panel.copy_button.isEnabled()
    panel.copy_button.click()
    assert QApplication.clipboard().text() == signed
