"""The New job form of the Batch view: template editor with a live preview, inputs, samples, output.

spec() validates the form with the same build_spec as `stillroom batch run JOB.yaml` and returns
the BatchSpec, or raises BatchSpecError with a message naming the problem. Everything runs on the
UI thread (an input file is read once, when it is picked).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from app.core.batch.spec import MAX_SAMPLES, BatchSpec, BatchSpecError, build_spec, read_inputs, template_slots
from app.ui.chat.sampling_panel import SamplingPanel

PREVIEW_COUNT = 3
PREVIEW_DEBOUNCE_MS = 150
INPUT_FILTER = "Inputs (*.csv *.jsonl);;All files (*)"
OUTPUT_FILTER = "JSON Lines (*.jsonl);;All files (*)"


class BatchForm(QWidget):
    """Name, workflow, mode, template (+ preview), inputs, samples, sampling and output (UI thread).

    Emits changed() after any edit (the preview is refreshed shortly after).
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.input_file: Path | None = None
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. capitals")
        self.workflow_edit = QLineEdit()
        self.workflow_edit.setPlaceholderText("default: the name")
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(["completion", "chat"])
        self.template_edit = QPlainTextEdit()
        self.template_edit.setPlaceholderText("Q: What is the capital of {country}?\nA:")
        self.template_edit.setMaximumHeight(90)
        self.inputs_edit = QPlainTextEdit()
        self.inputs_edit.setPlaceholderText("One input per line (fills {input}), or pick a CSV / JSONL file")
        self.inputs_edit.setMaximumHeight(80)
        self.input_label = QLabel("")
        self.input_label.setObjectName("Muted")
        self.input_button = QPushButton("Input file…")
        self.input_button.clicked.connect(self.pick_input)
        self.clear_input_button = QPushButton("Type inputs")
        self.clear_input_button.clicked.connect(lambda: self.set_input_file(None))
        self.samples_spin = QSpinBox()
        self.samples_spin.setRange(1, MAX_SAMPLES)
        self.output_edit = QLineEdit()
        self.output_edit.setPlaceholderText("where the output JSONL goes")
        output_button = QPushButton("Choose…")
        output_button.clicked.connect(self.pick_output)
        self.sampling = SamplingPanel()
        self.sampling.system_prompt.setPlaceholderText("Chat mode only: the system prompt of every request.")
        self.preview = QPlainTextEdit()
        self.preview.setObjectName("BatchPreview")
        self.preview.setReadOnly(True)
        self.preview.setMaximumHeight(120)
        self.error_label = QLabel("")
        self.error_label.setObjectName("BatchError")
        self.error_label.setWordWrap(True)
        input_row = QHBoxLayout()
        input_row.addWidget(self.input_button)
        input_row.addWidget(self.clear_input_button)
        input_row.addWidget(self.input_label, 1)
        output_row = QHBoxLayout()
        output_row.addWidget(self.output_edit, 1)
        output_row.addWidget(output_button)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Name", self.name_edit)
        form.addRow("Workflow", self.workflow_edit)
        form.addRow("Mode", self.mode_combo)
        form.addRow("Template", self.template_edit)
        form.addRow("Inputs", self.inputs_edit)
        form.addRow("", input_row)
        form.addRow("Samples", self.samples_spin)
        form.addRow("Output", output_row)
        form.addRow("Preview", self.preview)
        form.addRow("", self.error_label)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PREVIEW_DEBOUNCE_MS)
        self._timer.timeout.connect(self.update_preview)
        for edit in (self.name_edit, self.workflow_edit, self.output_edit):
            edit.textChanged.connect(self._on_edit)
        for text in (self.template_edit, self.inputs_edit):
            text.textChanged.connect(self._on_edit)
        self.mode_combo.currentIndexChanged.connect(self._on_edit)
        self.samples_spin.valueChanged.connect(self._on_edit)
        self.sampling.changed.connect(self._on_edit)
        self.chosen_output: Path | None = None
        self.set_input_file(None)

    # -- public ----------------------------------------------------------------------------------

    def raw(self) -> dict[str, Any]:
        """The form as a job mapping (what a job YAML holds)."""
        params = {key: value for key, value in asdict(self.sampling.params()).items()
                  if value not in (None, [], {})}
        inputs: Any = str(self.input_file) if self.input_file else \
            [line for line in self.inputs_edit.toPlainText().splitlines() if line.strip()]
        chat = self.mode_combo.currentText() == "chat"
        return {"name": self.name_edit.text().strip(), "workflow": self.workflow_edit.text().strip() or None,
                "mode": self.mode_combo.currentText(), "template": self.template_edit.toPlainText(),
                "inputs": inputs, "samples": self.samples_spin.value(), "params": params,
                "system": (self.sampling.system_text or None) if chat else None,
                "output": self.output_edit.text().strip()}

    def spec(self, allow_outside: bool = False) -> BatchSpec:
        """The validated job; BatchSpecError names what is wrong. A relative output is in the home
        folder; one elsewhere raises OutputOutsideError unless `allow_outside` or it was chosen with
        Choose… (the save dialog is the confirmation)."""
        raw = self.raw()
        chosen = self.chosen_output is not None and raw["output"] == str(self.chosen_output)
        return build_spec(raw, Path.home(), "this job", allow_outside or chosen)

    def output_confirmed(self, output: str) -> bool:
        """True when `output` is the file picked with Choose… (whose dialog asked before replacing)."""
        return self.chosen_output is not None and Path(output) == self.chosen_output.resolve()

    def update_preview(self) -> None:
        """Show the first rendered prompts, or what stops the template from rendering."""
        self._timer.stop()
        lines, error = self.preview_prompts()
        self.preview.setPlainText("\n\n".join(f"[{i + 1}] {prompt}" for i, prompt in enumerate(lines)))
        self.error_label.setText(error)

    def preview_prompts(self) -> tuple[list[str], str]:
        """(the first PREVIEW_COUNT prompts, an error message or "")."""
        template = self.template_edit.toPlainText()
        if not template.strip():
            return [], "Write a template; {name} marks a slot filled from each input."
        try:
            slots = template_slots(template)
            items = self._items()
        except BatchSpecError as exc:
            return [], str(exc)
        if not items:
            return [], "Add inputs: type one per line or pick a CSV / JSONL file."
        prompts = []
        for index, item in enumerate(items[:PREVIEW_COUNT]):
            missing = [slot for slot in slots if slot not in item]
            if missing:
                return prompts, (f"Input {index + 1} has no value for slot(s) {', '.join('{' + s + '}' for s in missing)}"
                                 f" (it has {', '.join(sorted(item)) or 'nothing'}).")
            prompts.append(template.format_map(item))
        return prompts, ""

    def set_input_file(self, path: Path | None) -> None:
        """Take inputs from this CSV / JSONL file (None: from the text box)."""
        self.input_file = path
        self._file_items: list[dict[str, str]] | None = None
        self._file_error = ""
        if path is not None:
            try:
                self._file_items = read_inputs(str(path), Path.home())
            except BatchSpecError as exc:
                self._file_error = str(exc)
        self.inputs_edit.setEnabled(path is None)
        self.clear_input_button.setEnabled(path is not None)
        count = f"{len(self._file_items)} inputs" if self._file_items is not None else self._file_error
        self.input_label.setText(f"{path.name}: {count}" if path else "")
        self._on_edit()

    def pick_input(self) -> None:
        """Choose a CSV or JSONL input file."""
        path, _ = QFileDialog.getOpenFileName(self, "Batch inputs", str(Path.home()), INPUT_FILTER)
        if path:
            self.set_input_file(Path(path))

    def pick_output(self) -> None:
        """Choose where the output JSONL is written."""
        path, _ = QFileDialog.getSaveFileName(self, "Batch output", str(Path.home() / "batch.jsonl"), OUTPUT_FILTER)
        if path:
            self.chosen_output = Path(path)
            self.output_edit.setText(path)

    # -- internals -------------------------------------------------------------------------------

    def _items(self) -> list[dict[str, str]]:
        if self.input_file is not None:
            if self._file_items is None:
                raise BatchSpecError(self._file_error)
            return self._file_items
        return read_inputs([line for line in self.inputs_edit.toPlainText().splitlines() if line.strip()], Path.home())

    def _on_edit(self) -> None:
        self._timer.start()
        self.changed.emit()
