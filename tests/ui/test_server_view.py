"""Server view: the switch serves the window's model (no second copy) to the real openai client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import urllib.error
import urllib.request
import pytest
from openai import OpenAI
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from app.core.serve import model_host
from app.ui.dialogs import ERROR_DIALOG
from app.ui.main_window import MainWindow
from app.ui.server.key_dialogs import NewKeyDialog, SecretDialog
from app.workers.server_host import GuiModelHost
from tests.ui.helpers import TURN_TIMEOUT_MS, ledger_rows, open_dialogs


def create_key_in_gui(qtbot: Any, window: MainWindow, name: str, workflow: str) -> str:
    """Create… -> name and workflow -> OK; returns the secret shown once."""
    view = window.server
    qtbot.mouseClick(view.create_button, Qt.MouseButton.LeftButton)
    dialog = view.findChild(NewKeyDialog)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled()  # a key needs a workflow
    qtbot.keyClicks(dialog.name_edit, name)
    qtbot.keyClicks(dialog.workflow_edit, workflow)
    with qtbot.waitSignal(view.key_created, timeout=10_000) as created:
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.findChild(SecretDialog) is not None, timeout=5_000)
    secret_dialog = view.findChild(SecretDialog)
    secret = secret_dialog.secret_edit.text()
    assert created.args == [name, workflow, secret] and secret.startswith("sk-stillroom-")
    secret_dialog.copy()
    secret_dialog.close()
    qtbot.waitUntil(lambda: view.keys_table.rowCount() == 1, timeout=5_000)
    return secret


def test_server_switch_serves_the_loaded_model_through_the_model_thread(
        qtbot: Any, window: MainWindow, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    view = window.server
    window.show_view("server")
    monkeypatch.setattr(model_host.ModelHost, "start", lambda self: pytest.fail("a second model was loaded"))
    secret = create_key_in_gui(qtbot, window, "notebook", "eval-wf")
    assert view.keys_table.item(0, 1).text() == "eval-wf" and view.keys_table.item(0, 4).text() == "active"
    view.port_spin.setValue(0)  # any free port
    with qtbot.waitSignal(view.server_toggled, timeout=10_000):
        qtbot.mouseClick(view.switch, Qt.MouseButton.LeftButton)
    server = view.server
    assert server is not None and view.switch.isChecked()
    assert server.model_host is view.host_adapter and isinstance(server.model_host, GuiModelHost)
    assert view.url_edit.text() == server.url and server.port != 0
    assert not view.host_edit.isEnabled() and not server.require_key

    with_key = OpenAI(base_url=server.url, api_key=secret, timeout=60, max_retries=0)
    completion = with_key.completions.create(model="default", prompt="The capital of France is", max_tokens=4)
    assert completion.choices[0].text
    anonymous = OpenAI(base_url=server.url, api_key="none", timeout=60, max_retries=0)
    stream = anonymous.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "Say hello."}], max_tokens=6, stream=True,
        extra_headers={"X-Stillroom-Workflow": "header-wf"})
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert streamed
    # a chat turn in the window still works on the same model thread while the server is on
    window.show_view("chat")
    qtbot.keyClicks(window.chat.composer, "Name a fruit.")
    with qtbot.waitSignal(window.chat.turn_finished, timeout=TURN_TIMEOUT_MS) as turn:
        qtbot.mouseClick(window.chat.send_button, Qt.MouseButton.LeftButton)
    assert turn.args[0].result.status == "ok"
    qtbot.waitUntil(lambda: view.count_label.text() == "2 requests served", timeout=5_000)

    rows = ledger_rows(home, "SELECT * FROM generations WHERE source = 'server' ORDER BY id")
    assert [(row["workflow"], row["mode"]) for row in rows] == [("eval-wf", "completion"), ("header-wf", "chat")]
    assert rows[0]["response"] == completion.choices[0].text and rows[1]["response"] == streamed
    assert json.loads(rows[0]["meta"])["server"]["api_key"] == "notebook"
    assert [row["source"] for row in ledger_rows(home, "SELECT source FROM generations ORDER BY id")] == \
        ["server", "server", "chat"]

    with qtbot.waitSignal(view.server_toggled, timeout=10_000) as off:
        qtbot.mouseClick(view.switch, Qt.MouseButton.LeftButton)
    assert off.args == [False] and view.server is None and view.url_edit.text() == ""
    with pytest.raises((urllib.error.URLError, OSError)):
        urllib.request.urlopen(server.url.replace("/v1", "/health"), timeout=2)
    # revoke from the table
    view.keys_table.selectRow(0)
    qtbot.mouseClick(view.revoke_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.keys_table.item(0, 4).text() == "revoked", timeout=5_000)


def test_other_hosts_require_keys_and_the_switch_reports_why_it_cannot_start(qtbot: Any, window: MainWindow) -> None:
    view = window.server
    window.show_view("server")
    view.host_edit.setText("0.0.0.0")
    assert view.require_keys.isChecked() and not view.require_keys.isEnabled()
    view.port_spin.setValue(0)
    qtbot.mouseClick(view.switch, Qt.MouseButton.LeftButton)
    assert view.server is None and not view.switch.isChecked()
    boxes = open_dialogs(window, ERROR_DIALOG)
    assert boxes and "API key" in boxes[0].informativeText()


def test_the_view_lists_every_endpoint_the_server_answers(window: MainWindow) -> None:
    """The table is read from app.core.serve.endpoints.ENDPOINTS, the list the server routes by."""
    from app.core.serve.endpoints import ENDPOINTS

    table = window.server.endpoints_table
    listed = [tuple(table.item(row, column).text() for column in range(3)) for row in range(table.rowCount())]
    assert listed == [(e.method, e.path, e.summary) for e in ENDPOINTS]
    assert ("POST", "/v1/chat/completions") in [row[:2] for row in listed]


def test_the_view_can_forward_to_another_engine_and_log_what_passes(qtbot: Any, window: MainWindow, home: Path) -> None:
    """Answer with: another engine -> its URL -> the switch starts the logging proxy; the openai client's
    request reaches the engine (an in-memory responder here) and is logged with source `proxy`."""
    from app.core.proxy.server import ProxyServer
    from tests.e2e.memory_responder import CHAT_BODY, memory_responder

    view = window.server
    window.show_view("server")
    assert not view.upstream_edit.isEnabled() and view.switch.text() == "Serve the loaded model"
    qtbot.mouseClick(view.forward_radio, Qt.MouseButton.LeftButton)
    assert view.upstream_edit.isEnabled() and view.switch.text() == "Forward to the engine"
    view.port_spin.setValue(0)
    with memory_responder() as (engine, seen):
        qtbot.keyClicks(view.upstream_edit, engine)
        with qtbot.waitSignal(view.server_toggled, timeout=10_000):
            qtbot.mouseClick(view.switch, Qt.MouseButton.LeftButton)
        server = view.server
        assert isinstance(server, ProxyServer) and view.url_edit.text() == server.url
        assert not view.upstream_edit.isEnabled() and not view.serve_radio.isEnabled()
        client = OpenAI(base_url=server.url, api_key="none", timeout=30, max_retries=0)
        answer = client.chat.completions.create(model="memory-model", messages=[{"role": "user", "content": "hi"}],
                                                extra_headers={"X-Stillroom-Workflow": "via-engine"})
        assert answer.choices[0].message.content == json.loads(CHAT_BODY)["choices"][0]["message"]["content"]
        assert len(seen) == 1
        qtbot.waitUntil(lambda: view.count_label.text() == "1 request logged", timeout=5_000)
        with qtbot.waitSignal(view.server_toggled, timeout=10_000):
            qtbot.mouseClick(view.switch, Qt.MouseButton.LeftButton)
    assert view.server is None and view.upstream_edit.isEnabled()
    [row] = ledger_rows(home, "SELECT * FROM generations WHERE source = 'proxy'")
    assert row["workflow"] == "via-engine" and json.loads(row["meta"])["proxy"]["upstream"] == engine


def test_a_bad_engine_url_is_refused_with_a_reason(qtbot: Any, window: MainWindow) -> None:
    view = window.server
    window.show_view("server")
    view.forward_radio.setChecked(True)
    view.upstream_edit.setText("localhost:11434")
    qtbot.mouseClick(view.switch, Qt.MouseButton.LeftButton)
    assert view.server is None and not view.switch.isChecked()
    boxes = open_dialogs(window, ERROR_DIALOG)
    assert boxes and "not an http:// or https:// URL" in boxes[0].informativeText()
