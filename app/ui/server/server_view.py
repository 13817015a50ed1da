"""The Server view: switch the local OpenAI-compatible server on and off, and manage API keys.

It either serves the model loaded in this window or forwards every request to another engine
(app.core.proxy.server.ProxyServer, the logging proxy of `stillroom proxy`), whose start (asking the
engines which models they serve) runs on a JobRunner's thread.

The server (app.core.serve.server.StillroomServer) runs its HTTP threads itself; generations go to
the window's model thread through GuiModelHost, so the model is never loaded twice. Keys are read
through the DbExecutor and written on a JobRunner's thread with a connection of its own (WAL), one
write at a time (Create and Revoke wait while one runs).
All of this view's slots run on the UI thread.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from sqlite_utils import Database

from app.core.cancel import CancelToken
from app.core.progress import Progress, one_step
from app.core.errors import StillroomError
from app.core.proxy.server import ProxyServer
from app.core.serve.api_keys import ApiKey, create_key, list_keys, revoke_key
from app.core.serve.endpoints import ENDPOINTS
from app.core.serve.server import DEFAULT_HOST, DEFAULT_PORT, WORKFLOW_HEADER, StillroomServer, is_loopback
from app.core.store import open_db
from app.ui.dialogs import show_error
from app.ui.server.key_dialogs import NewKeyDialog, SecretDialog
from app.workers.db_executor import DbExecutor
from app.ui.views import View
from app.workers.job_runner import JobRunner
from app.workers.model_service import ModelService
from app.workers.server_host import GuiModelHost

KEY_COLUMNS = ("Name", "Workflow", "Key", "Created", "Status")
ENDPOINT_COLUMNS = ("Method", "Path", "What it does")
KEY_ID_ROLE = Qt.ItemDataRole.UserRole


def _write_keys(ledger_path: Path,
                action: Callable[[Database], Any]) -> Callable[[CancelToken], Generator[Progress, None, Any]]:
    """A job factory running `action(db)` on a write connection of its own; returns what it returned."""
    def write() -> Any:
        db = open_db(ledger_path)
        try:
            return action(db)
        finally:
            db.close()
    return lambda _cancel: one_step(write)


class ServerView(View, QWidget):
    """Server switch, address, URL, request count and the API keys table (UI thread).

    Emits server_toggled(bool) after the server started (True) or stopped (False), and
    key_created(name, workflow, secret) once a key was stored (its secret is shown once).
    """

    key, nav_title = "server", "Server"
    server_toggled = Signal(bool)
    key_created = Signal(str, str, str)

    def __init__(self, service: ModelService, db: DbExecutor, ledger_path: Path,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._service, self._db, self._ledger_path = service, db, ledger_path
        self.server: StillroomServer | ProxyServer | None = None
        self.host_adapter = GuiModelHost(service, self)
        self.requests_served = 0
        self.keys: list[ApiKey] = []
        self.key_writes = JobRunner("api-keys", self)
        self.proxy_start = JobRunner("proxy-start", self)
        self._logged_timer = QTimer(self)
        self._logged_timer.setInterval(1000)
        self._logged_timer.timeout.connect(self._show_logged)
        self._build()
        self.host_adapter.served.connect(self._on_job_done)

    def _build(self) -> None:
        title = QLabel("Server")
        title.setObjectName("ViewTitle")
        self.switch = QCheckBox("Serve the loaded model")
        self.switch.setToolTip("An OpenAI-compatible API over the model loaded in this window")
        self.switch.toggled.connect(self.set_running)
        self.status_label = QLabel("Off")
        self.status_label.setObjectName("Muted")
        top = QHBoxLayout()
        top.addWidget(title)
        top.addStretch(1)
        top.addWidget(self.status_label)
        top.addWidget(self.switch)

        box = QGroupBox("Address")
        form = QFormLayout(box)
        self.serve_radio = QRadioButton("The model loaded in this window")
        self.forward_radio = QRadioButton("Another engine (log what passes through)")
        self.serve_radio.setChecked(True)
        self.forward_radio.toggled.connect(self._update_mode)
        self.upstream_edit = QLineEdit()
        self.upstream_edit.setPlaceholderText("http://localhost:11434/v1 (Ollama); several: separated by spaces")
        self.upstream_edit.setToolTip("The engine's OpenAI base URL: Ollama http://localhost:11434/v1, LM Studio "
                                      "http://localhost:1234/v1, llama.cpp server http://localhost:8080/v1, vLLM "
                                      "http://localhost:8000/v1")
        mode_row = QHBoxLayout()
        mode_row.addWidget(self.serve_radio)
        mode_row.addWidget(self.forward_radio)
        mode_row.addStretch(1)
        form.addRow("Answer with", mode_row)
        form.addRow("Engine URL", self.upstream_edit)
        self.host_edit = QLineEdit(DEFAULT_HOST)
        self.host_edit.textChanged.connect(self._update_keys_required)
        self.port_spin = QSpinBox()
        self.port_spin.setRange(0, 65_535)
        self.port_spin.setValue(DEFAULT_PORT)
        self.port_spin.setSpecialValueText("any free port")
        self.require_keys = QCheckBox("Require an API key for every request")
        self.url_edit = QLineEdit()
        self.url_edit.setReadOnly(True)
        self.url_edit.setPlaceholderText("The URL appears here once the server is on")
        self.copy_button = QPushButton("Copy")
        self.copy_button.setEnabled(False)
        self.copy_button.clicked.connect(lambda: QApplication.clipboard().setText(self.url_edit.text()))
        url_row = QHBoxLayout()
        url_row.addWidget(self.url_edit, 1)
        url_row.addWidget(self.copy_button)
        self.count_label = QLabel("0 requests served")
        form.addRow("Host", self.host_edit)
        form.addRow("Port", self.port_spin)
        form.addRow("", self.require_keys)
        form.addRow("Base URL", url_row)
        form.addRow("Requests", self.count_label)
        note = QLabel(f"Binding to anything but {DEFAULT_HOST} requires API keys. Without a key, requests are "
                      f"logged under the workflow of the {WORKFLOW_HEADER} header (default: api).")
        note.setObjectName("Muted")
        note.setWordWrap(True)
        form.addRow(note)

        endpoints_box = QGroupBox("Endpoints")
        endpoints_layout = QVBoxLayout(endpoints_box)
        self.endpoints_table = QTableWidget(len(ENDPOINTS), len(ENDPOINT_COLUMNS))
        self.endpoints_table.setHorizontalHeaderLabels(ENDPOINT_COLUMNS)
        self.endpoints_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.endpoints_table.verticalHeader().setVisible(False)
        self.endpoints_table.setShowGrid(False)
        self.endpoints_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.endpoints_table.horizontalHeader().setStretchLastSection(True)
        for row, endpoint in enumerate(ENDPOINTS):
            for column, text in enumerate((endpoint.method, endpoint.path, endpoint.summary)):
                self.endpoints_table.setItem(row, column, QTableWidgetItem(text))
        endpoints_layout.addWidget(self.endpoints_table)

        keys_box = QGroupBox("API keys")
        keys_layout = QVBoxLayout(keys_box)
        self.keys_table = QTableWidget(0, len(KEY_COLUMNS))
        self.keys_table.setHorizontalHeaderLabels(KEY_COLUMNS)
        self.keys_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.keys_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.keys_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.keys_table.verticalHeader().setVisible(False)
        self.keys_table.setShowGrid(False)
        self.keys_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.keys_table.itemSelectionChanged.connect(self._update_buttons)
        self.create_button = QPushButton("Create…")
        self.create_button.clicked.connect(self.create_dialog)
        self.revoke_button = QPushButton("Revoke")
        self.revoke_button.clicked.connect(self.revoke_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(self.create_button)
        buttons.addWidget(self.revoke_button)
        buttons.addStretch(1)
        keys_layout.addWidget(self.keys_table, 1)
        keys_layout.addLayout(buttons)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 12)
        layout.addLayout(top)
        layout.addWidget(box)
        layout.addWidget(endpoints_box)
        layout.addWidget(keys_box, 1)
        self._update_keys_required()
        self._update_mode()
        self._update_buttons()

    # -- public ----------------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the API keys again (database thread)."""
        self._db.submit(list_keys, self._show_keys)

    def set_running(self, on: bool) -> None:
        """Start or stop the server (the switch calls this; so may tests)."""
        if on == (self.server is not None):
            return
        if on:
            self._start()
        else:
            self._stop()

    def create_key(self, name: str, workflow: str) -> None:
        """Store a new key (worker thread); key_created and the secret dialog follow."""
        def done(item: Any) -> None:
            key, secret = item
            self.reload()
            self.key_created.emit(key.name, key.workflow, secret)
            SecretDialog(key.name, key.workflow, secret, self).open()
        self._write(lambda db: create_key(db, name, workflow), done, "The API key could not be created")

    def create_dialog(self) -> None:
        """Ask for a name and a workflow, then create the key."""
        dialog = NewKeyDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.create_key(*dialog.values()))
        dialog.open()

    def revoke_selected(self) -> None:
        """Revoke the selected key (worker thread)."""
        row = self.keys_table.currentRow()
        if row < 0:
            return
        key_id = int(self.keys_table.item(row, 0).data(KEY_ID_ROLE))
        self._write(lambda db: revoke_key(db, key_id), lambda _: self.reload(), "The API key could not be revoked")

    def on_ledger_ready(self) -> None:
        """Read the API keys."""
        self.reload()

    def shutdown(self) -> None:
        """Stop the server and wait for a key write (UI thread, when the window closes)."""
        self.proxy_start.shutdown()
        self._stop()
        self.key_writes.shutdown()

    # -- internals -------------------------------------------------------------------------------

    def _start(self) -> None:
        host = self.host_edit.text().strip() or DEFAULT_HOST
        require = True if self.require_keys.isChecked() else None
        if (require or not is_loopback(host)) and not any(key.revoked_at is None for key in self.keys):
            self._set_switch(False)
            show_error(self, "The server could not start", f"Serving on {host} with keys required needs an API "
                       "key: create one under API keys (Create…) first.")
            return
        if self.forward_radio.isChecked():
            self._start_proxy(host, require)
            return
        server = StillroomServer(self._ledger_path, host=host, port=self.port_spin.value(), require_key=require,
                                 model_host=self.host_adapter)  # type: ignore[arg-type]
        try:
            server.start()
        except StillroomError as exc:
            server.stop()
            self._set_switch(False)
            show_error(self, "The server could not start", str(exc))
            return
        self._started(server)

    def _start_proxy(self, host: str, require: bool | None) -> None:
        """Forward to the engines in the URL field: the proxy asks them for their models on a worker
        thread, then listens."""
        try:
            server = ProxyServer(self._ledger_path, self.upstream_edit.text().split(), host=host,
                                 port=self.port_spin.value(), require_key=require)
        except StillroomError as exc:
            self._set_switch(False)
            show_error(self, "The proxy could not start", str(exc))
            return
        self._enable_address(False)

        def failed(exc: BaseException) -> None:
            server.stop()
            self._set_switch(False)
            self._enable_address(True)
            show_error(self, "The proxy could not start", str(exc))

        (self.proxy_start.run(lambda _cancel: one_step(server.start))
         .success(lambda _: self._started(server))
         .failure(failed)
         .cancelled(server.stop))

    def _started(self, server: StillroomServer | ProxyServer) -> None:
        self.server = server
        if isinstance(server, ProxyServer):
            self._logged_timer.start()
        self.url_edit.setText(server.url)
        self.copy_button.setEnabled(True)
        self.status_label.setText(f"On: {server.url}" + (" (keys required)" if server.require_key else ""))
        self._set_switch(True)
        self._enable_address(False)
        self.server_toggled.emit(True)

    def _stop(self) -> None:
        server, self.server = self.server, None
        if server is None:
            return
        self._logged_timer.stop()
        server.stop()
        self.url_edit.clear()
        self.copy_button.setEnabled(False)
        self.status_label.setText("Off")
        self._set_switch(False)
        self._enable_address(True)
        self.server_toggled.emit(False)

    def _set_switch(self, on: bool) -> None:
        self.switch.blockSignals(True)
        self.switch.setChecked(on)
        self.switch.blockSignals(False)

    def _enable_address(self, enabled: bool) -> None:
        for widget in (self.host_edit, self.port_spin, self.serve_radio, self.forward_radio):
            widget.setEnabled(enabled)
        self.upstream_edit.setEnabled(enabled and self.forward_radio.isChecked())
        self._update_keys_required()
        self.require_keys.setEnabled(enabled and self.require_keys.isEnabled())

    def _update_keys_required(self) -> None:
        loopback = is_loopback(self.host_edit.text().strip() or DEFAULT_HOST)
        if not loopback:
            self.require_keys.setChecked(True)
        self.require_keys.setEnabled(loopback and self.server is None)

    def _update_mode(self) -> None:
        forward = self.forward_radio.isChecked()
        self.switch.setText("Forward to the engine" if forward else "Serve the loaded model")
        self.upstream_edit.setEnabled(forward and self.server is None)

    def _show_logged(self) -> None:
        """The proxy's count of logged requests (its writer's), once a second while it runs."""
        server = self.server
        if isinstance(server, ProxyServer) and server.writer is not None:
            self.count_label.setText(f"{server.writer.rows} request{'s' if server.writer.rows != 1 else ''} logged")

    def _on_job_done(self) -> None:
        if self.server is not None:
            self.requests_served += 1
            self.count_label.setText(f"{self.requests_served} request{'s' if self.requests_served != 1 else ''} "
                                     "served")

    def _show_keys(self, keys: list[ApiKey]) -> None:
        self.keys = keys
        self.keys_table.setRowCount(len(keys))
        for row, key in enumerate(keys):
            values = (key.name, key.workflow, key.prefix + "…", key.created_at[:19].replace("T", " "),
                      "revoked" if key.revoked_at else "active")
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setData(KEY_ID_ROLE, key.id)
                self.keys_table.setItem(row, column, item)
        self._update_buttons()

    def _update_buttons(self) -> None:
        row = self.keys_table.currentRow()
        live = 0 <= row < len(self.keys) and self.keys[row].revoked_at is None
        self.revoke_button.setEnabled(live and not self.key_writes.busy)
        self.create_button.setEnabled(not self.key_writes.busy)

    def _write(self, action: Callable[[Database], Any], on_done: Callable[[Any], None], title: str) -> None:
        if self.key_writes.busy:
            show_error(self, title, "Another API key is being written; try again in a moment.")
            return
        (self.key_writes.run(_write_keys(self._ledger_path, action))
         .success(on_done)
         .failure(lambda exc: show_error(self, title, str(exc)))
         .finally_(self._update_buttons))
        self._update_buttons()
