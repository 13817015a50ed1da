"""The Ledger view's tree line: the Merkle tree's size and the latest signed checkpoint, with a Copy
button for publishing it (a dataset card, a repository, a post). Read on the DbExecutor's thread."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication, QHBoxLayout, QLabel, QPushButton, QWidget
from sqlite_utils import Database

from app.core.store.checkpoint import tree_head
from app.workers.db_executor import DbExecutor

NO_CHECKPOINT = "no checkpoint signed yet: run `stillroom log checkpoint` or write a provenance statement"


def read_head(db: Database) -> tuple[int, str | None]:
    """(tree size, latest signed checkpoint or None); runs on the database thread."""
    return tree_head(db.conn)


class TreePanel(QWidget):
    """One line: "Merkle tree: N rows; checkpoint at M rows: <root>" and a Copy button."""

    def __init__(self, db: DbExecutor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._db = db
        self.checkpoint: str | None = None
        self.size_label = QLabel("Merkle tree: …")
        self.size_label.setObjectName("Muted")
        self.checkpoint_label = QLabel("")
        self.checkpoint_label.setObjectName("Muted")
        self.copy_button = QPushButton("Copy checkpoint")
        self.copy_button.setToolTip("Copy the latest signed checkpoint (a C2SP signed note) to publish it")
        self.copy_button.setEnabled(False)
        self.copy_button.clicked.connect(self.copy)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(self.size_label)
        layout.addWidget(self.checkpoint_label, 1)
        layout.addWidget(self.copy_button)

    def reload(self) -> None:
        """Re-read the tree's size and latest checkpoint (the labels update when the read is done)."""
        self._db.submit(read_head, self._show, lambda exc: self.size_label.setText(f"Merkle tree: {exc}"))

    def _show(self, head: tuple[int, str | None]) -> None:
        size, signed = head
        self.checkpoint = signed
        self.size_label.setText(f"Merkle tree: {size} rows")
        if signed is None:
            self.checkpoint_label.setText(NO_CHECKPOINT)
        else:
            lines = signed.split("\n")
            self.checkpoint_label.setText(f"latest checkpoint: {lines[1]} rows, root {lines[2]}")
            self.checkpoint_label.setToolTip(signed)
        self.copy_button.setEnabled(signed is not None)

    def copy(self) -> None:
        """Put the latest signed checkpoint on the clipboard."""
        if self.checkpoint:
            QApplication.clipboard().setText(self.checkpoint)
