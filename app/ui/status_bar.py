"""The status bar: what the model thread is doing, the loaded model, last tokens/s, ledger size, chain."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QWidget
from sqlite_utils import Database

from app.core.models.runner import LoadedModel
from app.core.store.ledger import VerifyResult
from app.core.store.queries import count_generations
from app.ui.formatting import human_size


class ClickableLabel(QLabel):
    """A label that emits clicked() on a left click (UI thread)."""

    clicked = Signal()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mousePressEvent(event)


def ledger_stats(ledger_path: Path):
    """A database job: (row count, bytes on disk including the WAL) of the ledger."""

    def job(db: Database) -> tuple[int, int]:
        size = sum(os.path.getsize(p) for p in (ledger_path, Path(f"{ledger_path}-wal")) if p.exists())
        return count_generations(db), size

    return job


class StatusBar(QStatusBar):
    """Permanent fields, updated by the main window (UI thread). Emits chain_clicked()."""

    chain_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizeGripEnabled(True)
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(90)
        self.busy_bar.setMaximumHeight(12)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.setVisible(False)
        self.busy_label = QLabel()
        self.model_label = QLabel("No model")
        self.rate_label = QLabel("– tok/s")
        self.rate_label.setToolTip("Generation speed of the last answer")
        self.ledger_label = QLabel("Ledger: –")
        self.chain_label = ClickableLabel("Chain: not checked")
        self.chain_label.setToolTip("The ledger's hash chain. Click to verify it now.")
        self.chain_label.setCursor(Qt.CursorShape.PointingHandCursor)
        self.chain_label.clicked.connect(self.chain_clicked)
        self.addWidget(self.busy_bar)
        self.addWidget(self.busy_label, 1)
        for label in (self.model_label, self.rate_label, self.ledger_label, self.chain_label):
            self.addPermanentWidget(label)

    def set_busy(self, text: str) -> None:
        self.busy_label.setText(text)
        self.busy_bar.setVisible(bool(text))
        if text:
            self._set_state(self.model_label, "busy")

    def set_model(self, loaded: LoadedModel | None) -> None:
        if loaded is None:
            self.model_label.setText("No model")
            self.model_label.setToolTip("")
            self._set_state(self.model_label, "")
            return
        quant = f" · {loaded.info.quantization}" if loaded.info.quantization else ""
        self.model_label.setText(f"{loaded.info.name}{quant}")
        self.model_label.setToolTip(f"{loaded.info.path}\nsha256 {loaded.sha256}\n"
                                    f"n_ctx {loaded.options.n_ctx}, {loaded.n_threads} threads, "
                                    f"GPU layers {loaded.options.n_gpu_layers}, chat format {loaded.chat_format}")
        self._set_state(self.model_label, "")

    def set_rate(self, tokens_per_s: float | None) -> None:
        self.rate_label.setText(f"{tokens_per_s:.1f} tok/s" if tokens_per_s else "– tok/s")

    def set_ledger(self, stats: tuple[int, int]) -> None:
        rows, size = stats
        self.ledger_label.setText(f"Ledger: {rows:,} {'row' if rows == 1 else 'rows'} · {human_size(size)}")

    def set_chain_checking(self) -> None:
        self.chain_label.setText("Chain: checking…")
        self._set_state(self.chain_label, "busy")

    def set_chain(self, result: VerifyResult) -> None:
        if result.ok:
            self.chain_label.setText("Chain: intact ✓")
            self.chain_label.setToolTip(f"Verified {result.rows:,} {'row' if result.rows == 1 else 'rows'}; head row {result.head_id}, "
                                        f"hash {result.head_hash}. Click to verify again.")
            self._set_state(self.chain_label, "ok")
        else:
            self.chain_label.setText(f"Chain: broken at row {result.bad_id}")
            self.chain_label.setToolTip(f"{result.problem}\nClick to verify again.")
            self._set_state(self.chain_label, "bad")

    @staticmethod
    def _set_state(label: QLabel, state: str) -> None:
        label.setProperty("state", state)
        label.style().unpolish(label)
        label.style().polish(label)
