"""The model manager: add GGUF files, see their metadata, load and unload with n_ctx, GPU layers, threads.

Registration and loading run on the model thread (ModelService); the list is read through the
DbExecutor. While the model thread is busy the view shows what it is doing and disables loading.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.models.chat_format import KNOWN_FORMATS
from app.core.models.registry import list_models
from app.core.models.runner import LoadedModel, LoadOptions
from app.ui.formatting import human_size
from app.ui.settings import AppSettings
from app.ui.views import View
from app.workers.db_executor import DbExecutor
from app.workers.model_service import ModelService
from app.workers.model_worker import default_threads

COLUMNS = ("Name", "Architecture", "Quantization", "Size", "License", "Context", "SHA-256", "Status")
SHA_ROLE = Qt.ItemDataRole.UserRole
MAX_CTX = 1_048_576


class ModelView(View, QWidget):
    """Model list and load options (UI thread). Emits add_requested() for the Add button."""

    key, nav_title = "models", "Models"
    add_requested = Signal()

    def __init__(self, service: ModelService, db: DbExecutor, settings: AppSettings,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._service, self._db, self._settings = service, db, settings
        self._models: list[dict[str, Any]] = []
        self._build()
        self.set_options(settings.load_options())
        service.busy.connect(self._on_busy)
        service.model_loaded.connect(self._on_loaded)
        service.model_unloaded.connect(self._on_loaded)
        service.models_changed.connect(self.reload)
        service.gpu_offload.connect(self._on_gpu)

    def _build(self) -> None:
        title = QLabel("Models")
        title.setObjectName("ViewTitle")
        subtitle = QLabel("GGUF files Stillroom knows. Drop a .gguf file anywhere on the window to add it.")
        subtitle.setObjectName("Muted")
        self.add_button = QPushButton("Add model…")
        self.add_button.setToolTip("Add a GGUF file (Ctrl+O)")
        self.add_button.clicked.connect(self.add_requested)
        self.load_button = QPushButton("Load")
        self.load_button.setProperty("primary", True)
        self.load_button.setToolTip("Load the selected model with the options below")
        self.load_button.clicked.connect(self.load_selected)
        self.unload_button = QPushButton("Unload")
        self.unload_button.setToolTip("Free the loaded model's memory")
        self.unload_button.clicked.connect(self._service.unload)
        top = QHBoxLayout()
        heading = QVBoxLayout()
        heading.addWidget(title)
        heading.addWidget(subtitle)
        top.addLayout(heading, 1)
        for button in (self.add_button, self.unload_button, self.load_button):
            top.addWidget(button)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_actions)
        self.table.itemDoubleClicked.connect(lambda _item: self.load_selected())
        options = QGroupBox("Load options")
        form = QFormLayout(options)
        self.n_ctx = QSpinBox()
        self.n_ctx.setRange(256, MAX_CTX)
        self.n_ctx.setSingleStep(1024)
        self.n_ctx.setToolTip("Context length in tokens: prompt plus answer. Larger needs more memory.")
        self.n_gpu_layers = QSpinBox()
        self.n_gpu_layers.setRange(-1, 1000)
        self.n_gpu_layers.setSpecialValueText("all")
        self.n_gpu_layers.setToolTip("Layers to offload to the GPU (needs a GPU build of llama.cpp; see README).")
        self.n_threads = QSpinBox()
        self.n_threads.setRange(0, max(1, os.cpu_count() or 1) * 2)
        self.n_threads.setSpecialValueText("auto")
        self.n_threads.setToolTip(f"CPU threads for generation ('auto': {default_threads()} on this machine, "
                                  "about one per physical core).")
        self.chat_format = QComboBox()
        self.chat_format.addItem("auto", "auto")
        for name in KNOWN_FORMATS:
            self.chat_format.addItem(name, name)
        self.chat_format.setToolTip("How chat messages become a prompt; auto uses the file's own template.")
        self.gpu_note = QLabel("GPU offload: checked when a model is loaded")
        self.gpu_note.setObjectName("Muted")
        form.addRow("Context (n_ctx)", self.n_ctx)
        form.addRow("GPU layers", self.n_gpu_layers)
        form.addRow("Threads", self.n_threads)
        form.addRow("Chat format", self.chat_format)
        form.addRow("", self.gpu_note)
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(160)
        self.busy_bar.setVisible(False)
        self.busy_label = QLabel()
        self.busy_label.setObjectName("Muted")
        self.loaded_label = QLabel("No model loaded")
        state = QHBoxLayout()
        state.addWidget(self.loaded_label, 1)
        state.addWidget(self.busy_label)
        state.addWidget(self.busy_bar)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 12)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(state)
        layout.addWidget(options)
        self._update_actions()

    # -- public ----------------------------------------------------------------------------------

    def on_ledger_ready(self) -> None:
        """Read the registered models."""
        self.reload()

    def reload(self) -> None:
        """Re-read the registered models on the database thread."""
        self._db.submit(list_models, self._show_models)

    def options(self) -> LoadOptions:
        """The load options as set in the form."""
        return LoadOptions(n_ctx=self.n_ctx.value(), n_gpu_layers=self.n_gpu_layers.value(),
                           n_threads=self.n_threads.value() or None,
                           chat_format=str(self.chat_format.currentData()))

    def set_options(self, options: LoadOptions) -> None:
        """Show these load options in the form."""
        self.n_ctx.setValue(options.n_ctx)
        self.n_gpu_layers.setValue(options.n_gpu_layers)
        self.n_threads.setValue(options.n_threads or 0)
        index = self.chat_format.findData(options.chat_format)
        self.chat_format.setCurrentIndex(max(0, index))

    def selected_sha(self) -> str | None:
        """sha256 of the selected model, if any."""
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.table.item(rows[0].row(), 0).data(SHA_ROLE)

    def select_sha(self, sha256: str) -> None:
        """Select the row of a model."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(SHA_ROLE) == sha256:
                self.table.selectRow(row)

    def load_selected(self) -> None:
        """Load the selected model with the form's options (remembered for next time)."""
        sha = self.selected_sha()
        if sha is None or self._service.generating:
            return
        options = self.options()
        self._settings.set_load_options(options)
        self._settings.last_model = sha
        self._service.load(sha, options)
        self._on_busy("Loading…")

    # -- events ----------------------------------------------------------------------------------

    def _show_models(self, models: list[dict[str, Any]]) -> None:
        selected = self.selected_sha()
        self._models = models
        loaded = self._service.loaded
        self.table.setRowCount(len(models))
        for row, model in enumerate(models):
            status = "loaded" if loaded and loaded.sha256 == model["sha256"] else \
                ("" if model["present"] else "file missing")
            values = (model["name"], model["architecture"], model["quantization"] or "",
                      human_size(model["size_bytes"]), model["license"] or "",
                      f"{model['context_length']:,}" if model["context_length"] else "",
                      model["sha256"][:12], status)
            for column, value in enumerate(values):
                item = QTableWidgetItem(str(value))
                item.setData(SHA_ROLE, model["sha256"])
                if column == 0:
                    item.setToolTip(model["path"])
                if column == 6:
                    item.setToolTip(model["sha256"])
                self.table.setItem(row, column, item)
        target = selected or (loaded.sha256 if loaded else None)
        if target:
            self.select_sha(target)
        elif models:
            self.table.selectRow(0)
        self._update_actions()

    def _on_loaded(self, loaded: LoadedModel | None = None) -> None:
        loaded = self._service.loaded
        if loaded is None:
            self.loaded_label.setText("No model loaded")
        else:
            self.loaded_label.setText(
                f"Loaded: <b>{loaded.info.name}</b> · n_ctx {loaded.options.n_ctx:,} · "
                f"{loaded.n_threads} threads · GPU layers {loaded.options.n_gpu_layers} · "
                f"chat format {loaded.chat_format}")
            self.select_sha(loaded.sha256)  # the table's selection follows a load from anywhere (Chat, server)
        self.reload()

    def _on_busy(self, text: str) -> None:
        self.busy_label.setText(text)
        self.busy_bar.setVisible(bool(text))
        self._update_actions()

    def _on_gpu(self, supported: bool) -> None:
        self.n_gpu_layers.setEnabled(supported)
        self.gpu_note.setText("GPU offload available" if supported else
                              "GPU offload: this llama.cpp build is CPU-only (see README to rebuild)")

    def _update_actions(self) -> None:
        busy = bool(self._service.busy_text) or self._service.generating
        self.load_button.setEnabled(not busy and self.selected_sha() is not None)
        self.unload_button.setEnabled(not busy and self._service.loaded is not None)
        self.add_button.setEnabled(not busy)
