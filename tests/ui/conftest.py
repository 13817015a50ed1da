"""GUI test fixtures: a real main window on the real default model, and a check for leaked QThreads.

Qt warnings fail a test through pytest-qt's qt_log_level_fail (pyproject.toml).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import pytest
from PySide6.QtCore import QThread
from PySide6.QtWidgets import QMessageBox

from app.ui.main_window import MainWindow
from app.ui.settings import AppSettings
from tests.ui.helpers import LOAD_TIMEOUT_MS, seed_settings


@pytest.fixture(autouse=True, scope="session")
def _gc_on_the_gui_thread(qapp: Any) -> Iterator[None]:
    """As the app does (app/ui/application.py): Python's cycle collector runs only on the GUI thread, so a
    Qt object left over from one test is never destroyed on a later test's worker thread."""
    from pyqtgraph.util.garbage_collector import GarbageCollector

    collector = GarbageCollector(interval=1.0)
    yield
    collector.timer.stop()
    gc.enable()


@pytest.fixture(autouse=True)
def _collect_after_each_test() -> Iterator[None]:
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def _dangling_qthreads(monkeypatch: pytest.MonkeyPatch, qtbot: Any) -> Iterator[None]:
    """Fail a test that leaves a QThread running (napari's idea): every start() is recorded."""
    started: WeakKeyDictionary[QThread, str] = WeakKeyDictionary()
    original = QThread.start

    def recording_start(self: QThread, *args: Any) -> None:
        caller = sys._getframe(1)
        started[self] = f"{caller.f_code.co_filename}:{caller.f_lineno}"
        original(self, *args)

    monkeypatch.setattr(QThread, "start", recording_start)
    yield
    leaked = []
    for thread, where in list(started.items()):
        try:
            if thread.isRunning():
                leaked.append((thread, where))
        except RuntimeError:  # the C++ object is gone, so is the thread
            continue
    for thread, _ in leaked:
        thread.quit()
        thread.wait(2_000)
    if leaked:
        names = ", ".join(f"{t.objectName() or 'QThread'} started at {where}" for t, where in leaked)
        pytest.fail(f"QThreads still running after the test: {names}")


@pytest.fixture
def make_window(home: Path, qtbot: Any) -> Iterator[Callable[..., MainWindow]]:
    """Open main windows on `home` (the model loaded and the ledger read); all closed at teardown."""
    windows: list[MainWindow] = []

    def make(seed: bool = True, wait_for_model: bool = True) -> MainWindow:
        settings = AppSettings()
        if seed and not windows:
            seed_settings(settings)
        window = MainWindow(settings)
        qtbot.addWidget(window)
        window.show()
        window.start()
        windows.append(window)
        if wait_for_model:
            qtbot.waitUntil(lambda: window.service.loaded is not None and not window.service.busy_text,
                            timeout=LOAD_TIMEOUT_MS)
            qtbot.waitUntil(lambda: not window.ledger.model.loading and window.db.pending == 0, timeout=10_000)
        return window

    yield make
    for window in windows:
        for box in window.findChildren(QMessageBox):
            box.close()
        window.close()


@pytest.fixture
def window(make_window: Callable[..., MainWindow]) -> MainWindow:
    """One main window, ready to chat."""
    return make_window()
