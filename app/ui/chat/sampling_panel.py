"""The chat's settings panel: system prompt and sampling parameters (UI thread)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.models.sampling import SamplingParams
from app.ui.settings import SAMPLING_KEYS

RANDOM_SEED = -1
MAX_SEED = 2**31 - 1


class SamplingPanel(QWidget):
    """System prompt and temperature, top-p, top-k, min-p, max tokens, seed, repeat penalty.

    Emits changed() (UI thread) whenever the user edits a value.
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._defaults = SamplingParams()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        system_box = QGroupBox("System prompt")
        system_layout = QVBoxLayout(system_box)
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setPlaceholderText("Optional: how the assistant should behave in this conversation.")
        self.system_prompt.setTabChangesFocus(True)
        self.system_prompt.setMaximumHeight(110)
        system_layout.addWidget(self.system_prompt)
        layout.addWidget(system_box)

        box = QGroupBox("Sampling")
        form = QFormLayout(box)
        self.temperature = _double(0.0, 2.0, 0.05, 2, "Randomness; 0 always picks the likeliest token.")
        self.top_p = _double(0.0, 1.0, 0.01, 2, "Nucleus sampling: keep the smallest set of tokens with this much probability.")
        self.min_p = _double(0.0, 1.0, 0.01, 2, "Drop tokens less likely than this share of the likeliest one.")
        self.top_k = QSpinBox()
        self.top_k.setRange(0, 1000)
        self.top_k.setToolTip("Keep only the k likeliest tokens (0: no limit).")
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(1, 32_768)
        self.max_tokens.setSingleStep(64)
        self.max_tokens.setToolTip("The most tokens one answer may have.")
        self.seed = QSpinBox()
        self.seed.setRange(RANDOM_SEED, MAX_SEED)
        self.seed.setSpecialValueText("random")
        self.seed.setToolTip("A fixed seed makes a turn reproducible; 'random' draws one and logs it.")
        self.repeat_penalty = _double(0.5, 2.0, 0.05, 2, "Penalty for repeating recent tokens (1: none).")
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-p", self.top_p)
        form.addRow("Top-k", self.top_k)
        form.addRow("Min-p", self.min_p)
        form.addRow("Max tokens", self.max_tokens)
        form.addRow("Seed", self.seed)
        form.addRow("Repeat penalty", self.repeat_penalty)
        self.reset_button = QPushButton("Reset to defaults")
        self.reset_button.setToolTip("Back to the loaded model's own sampling defaults")
        self.reset_button.clicked.connect(self.reset)
        form.addRow(self.reset_button)
        layout.addWidget(box)
        note = QLabel("Every value is recorded with each turn in the ledger.")
        note.setObjectName("Muted")
        note.setWordWrap(True)
        layout.addWidget(note)
        layout.addStretch(1)
        for spin in (self.temperature, self.top_p, self.top_k, self.min_p, self.max_tokens, self.seed,
                     self.repeat_penalty):
            spin.valueChanged.connect(self.changed)
        self.system_prompt.textChanged.connect(self.changed)
        self.reset()  # start from the defaults, not from each spin box's minimum

    def params(self) -> SamplingParams:
        """The parameters as set in the panel."""
        seed = self.seed.value()
        return SamplingParams(
            temperature=round(self.temperature.value(), 3), top_p=round(self.top_p.value(), 3),
            top_k=self.top_k.value(), min_p=round(self.min_p.value(), 3), max_tokens=self.max_tokens.value(),
            seed=None if seed == RANDOM_SEED else seed, repeat_penalty=round(self.repeat_penalty.value(), 3),
        )

    def set_params(self, params: SamplingParams) -> None:
        """Show these parameters (emits changed once)."""
        widgets = (self.temperature, self.top_p, self.top_k, self.min_p, self.max_tokens, self.seed,
                   self.repeat_penalty)
        for widget in widgets:
            widget.blockSignals(True)
        self.temperature.setValue(params.temperature)
        self.top_p.setValue(params.top_p)
        self.top_k.setValue(params.top_k)
        self.min_p.setValue(params.min_p)
        self.max_tokens.setValue(params.max_tokens)
        self.seed.setValue(RANDOM_SEED if params.seed is None else min(params.seed, MAX_SEED))
        self.repeat_penalty.setValue(params.repeat_penalty)
        for widget in widgets:
            widget.blockSignals(False)
        self.changed.emit()

    def restore(self, stored: object) -> None:
        """Show the sampling a conversation last used (its settings' "sampling" mapping); anything that
        is not one, or was written by another version, leaves the panel as it is."""
        if not isinstance(stored, dict):
            return
        try:
            self.set_params(SamplingParams(**{k: stored[k] for k in SAMPLING_KEYS if k in stored}))
        except (TypeError, ValueError):
            pass

    def set_defaults(self, params: SamplingParams) -> None:
        """What Reset to defaults shows from now on (the loaded model's defaults)."""
        self._defaults = params

    def reset(self) -> None:
        """Back to the defaults (the loaded model's, see set_defaults; SamplingParams' at first)."""
        self.set_params(self._defaults)

    @property
    def system_text(self) -> str:
        """The system prompt, stripped."""
        return self.system_prompt.toPlainText().strip()


def _double(low: float, high: float, step: float, decimals: int, tip: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setDecimals(decimals)
    spin.setToolTip(tip)
    return spin
