"""The model manager: the default model's metadata, load/unload with options, bad files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from app.core.models.chat_model import CHAT_MODEL_FILE
from app.ui.dialogs import ERROR_DIALOG
from app.ui.main_window import MainWindow
from app.ui.settings import AppSettings
from tests.core.gguf_files import write_huge_sparse_gguf, write_truncated
from tests.ui.helpers import LOAD_TIMEOUT_MS, TURN_TIMEOUT_MS, ledger_rows, open_dialogs


def table_row(window: MainWindow, row: int) -> list[str]:
    table = window.models.table
    return [table.item(row, column).text() for column in range(table.columnCount())]


def default_model_file(home: Path) -> Path:
    return next((home / "models").glob("*.gguf"))


def test_both_bundled_models_are_listed_with_licenses_and_the_chat_model_loaded(qtbot: Any,
                                                                              window: MainWindow) -> None:
    window.show_view("models")
    qtbot.waitUntil(lambda: window.models.table.rowCount() == 2, timeout=5_000)
    loaded = window.service.loaded
    rows = {row[6]: row for row in (table_row(window, i) for i in range(2))}
    name, arch, quant, size, license_, context, sha, status = rows[loaded.sha256[:12]]
    assert loaded.info.file_name == CHAT_MODEL_FILE  # the bundled chat model is loaded first
    assert name == loaded.info.name and arch == "llama" and quant == "Q4_1" and license_ == "apache-2.0"
    assert size.endswith("MB") and context.replace(",", "").isdigit()
    assert status == "loaded"
    (gemma,) = [row for key, row in rows.items() if key != loaded.sha256[:12]]
    assert gemma[1] == "gemma3" and gemma[2] == "Q4_K_M" and gemma[4] == "gemma" and gemma[7] != "loaded"
    assert window.models.selected_sha() == loaded.sha256
    assert loaded.options.n_ctx == 1024  # from the settings
    assert loaded.info.name in window.status.model_label.text()
    assert "Loaded:" in window.models.loaded_label.text()
    assert window.models.n_gpu_layers.isEnabled() == window.service.gpu_offload_supported


def test_unload_then_load_with_new_options(qtbot: Any, window: MainWindow) -> None:
    window.show_view("models")
    models = window.models
    qtbot.waitUntil(lambda: models.unload_button.isEnabled(), timeout=5_000)
    with qtbot.waitSignal(window.service.model_unloaded, timeout=10_000):
        qtbot.mouseClick(models.unload_button, Qt.MouseButton.LeftButton)
    assert window.status.model_label.text() == "No model"
    assert not window.chat.send_button.isEnabled()
    assert "No model loaded" in window.chat.hint.text()
    models.n_ctx.setValue(768)
    models.n_threads.setValue(1)
    qtbot.waitUntil(lambda: models.load_button.isEnabled(), timeout=5_000)
    with qtbot.waitSignal(window.service.model_loaded, timeout=LOAD_TIMEOUT_MS) as loaded:
        qtbot.mouseClick(models.load_button, Qt.MouseButton.LeftButton)
        assert models.busy_bar.isVisible() or window.service.busy_text
    assert loaded.args[0].options.n_ctx == 768 and loaded.args[0].n_threads == 1
    assert window.chat.send_button.isEnabled()
    options = AppSettings().load_options()
    assert options.n_ctx == 768 and options.n_threads == 1
    assert AppSettings().last_model == loaded.args[0].sha256


def test_a_corrupt_model_file_gives_a_dialog_and_the_app_keeps_working(qtbot: Any, window: MainWindow,
                                                                        home: Path, tmp_path: Path) -> None:
    broken = write_truncated(default_model_file(home), tmp_path / "broken.gguf", 2_000_000)
    # dragged onto the window and dropped, as a person would
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(broken))])
    where, copy, left, none = QPoint(20, 20), Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton, \
        Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(where, copy, mime, left, none)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    assert QApplication.sendEvent(window, QDropEvent(where, copy, mime, left, none))
    qtbot.waitUntil(lambda: bool(open_dialogs(window, ERROR_DIALOG)), timeout=10_000)
    box = open_dialogs(window, ERROR_DIALOG)[0]
    assert "broken.gguf" in box.informativeText() and "truncated" in box.informativeText()
    assert window.current_view() == "models"
    box.close()
    qtbot.waitUntil(lambda: not window.service.busy_text, timeout=5_000)
    assert window.models.table.rowCount() == 2  # nothing was registered beside the two bundled models
    # still usable: a chat turn runs and is logged
    window.show_view("chat")
    window.chat.composer.setPlainText("Still there?")
    with qtbot.waitSignal(window.chat.turn_finished, timeout=TURN_TIMEOUT_MS):
        window.chat.send()
    assert len(ledger_rows(home)) == 1


def test_a_model_too_large_for_memory_is_refused_before_hashing(qtbot: Any, window: MainWindow,
                                                                  tmp_path: Path) -> None:
    huge = write_huge_sparse_gguf(tmp_path / "enormous.gguf", 2**40)  # a 1 TB (sparse) file
    window.add_model_files([str(huge)])
    qtbot.waitUntil(lambda: bool(open_dialogs(window, ERROR_DIALOG)), timeout=10_000)
    box = open_dialogs(window, ERROR_DIALOG)[0]
    assert "enormous.gguf" in box.informativeText() and "memory" in box.informativeText()
    box.close()
    qtbot.waitUntil(lambda: not window.service.busy_text, timeout=10_000)
    assert window.models.table.rowCount() == 2 and window.service.loaded is not None  # the two bundled ones


def test_a_model_llama_cpp_cannot_load_gives_a_dialog_and_another_loads_after(qtbot: Any, window: MainWindow,
                                                                              tmp_path: Path) -> None:
    default_sha = window.service.loaded.sha256
    hollow = write_huge_sparse_gguf(tmp_path / "hollow.gguf", 8192 * 4 * 16)  # valid header, no real weights
    with qtbot.waitSignal(window.service.models_changed, timeout=LOAD_TIMEOUT_MS):
        window.add_model_files([str(hollow)])
    qtbot.waitUntil(lambda: window.models.table.rowCount() == 3, timeout=5_000)
    hollow_sha = next(m["sha256"] for m in window.models._models if m["file_name"] == "hollow.gguf")
    window.models.select_sha(hollow_sha)
    qtbot.waitUntil(lambda: window.models.load_button.isEnabled(), timeout=5_000)
    qtbot.mouseClick(window.models.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(open_dialogs(window, ERROR_DIALOG)), timeout=LOAD_TIMEOUT_MS)
    box = open_dialogs(window, ERROR_DIALOG)[0]
    assert "hollow.gguf" in box.informativeText() and "could not load" in box.informativeText()
    box.close()
    qtbot.waitUntil(lambda: not window.service.busy_text, timeout=LOAD_TIMEOUT_MS)
    assert window.service.loaded is None and window.status.model_label.text() == "No model"
    assert not window.chat.send_button.isEnabled()
    window.models.select_sha(default_sha)
    with qtbot.waitSignal(window.service.model_loaded, timeout=LOAD_TIMEOUT_MS):
        window.models.load_selected()
    assert window.chat.send_button.isEnabled() and window.service.loaded.sha256 == default_sha
