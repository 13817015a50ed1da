"""Start the desktop app: QApplication, theme, the main window; the model loads after it is shown.

For benchmarks: STILLROOM_REPORT_STARTUP=1 prints "window shown after N ms" and later "model ready
after N ms" (both from process start) to stderr; STILLROOM_QUIT_AFTER_STARTUP=shown or =ready then
closes the window at that point.
"""

from __future__ import annotations

import os
import sys
import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from pyqtgraph.util.garbage_collector import GarbageCollector

from app.core.paths import APP_NAME
from app.ui.icons import app_icon
from app.ui.main_window import MainWindow
from app.ui.settings import AppSettings

REPORT_ENV = "STILLROOM_REPORT_STARTUP"
QUIT_ENV = "STILLROOM_QUIT_AFTER_STARTUP"


def process_age_ms() -> float | None:
    """Milliseconds since this process started (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as handle:
            start_ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as handle:
            uptime_s = float(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return (uptime_s - start_ticks / os.sysconf("SC_CLK_TCK")) * 1000


def create_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication with Stillroom's name and icon (reuses an existing instance)."""
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setDesktopFileName("stillroom")
    app.setWindowIcon(app_icon())
    return app


class _StartupReport:
    """Prints startup milestones to stderr and optionally closes the window at one (benchmarks)."""

    def __init__(self, window: MainWindow, started: float) -> None:
        self.window, self.started = window, started
        self.report = bool(os.environ.get(REPORT_ENV))
        self.quit_at = os.environ.get(QUIT_ENV, "")

    def milestone(self, name: str) -> None:
        if self.report:
            age = process_age_ms()
            in_run = (time.perf_counter() - self.started) * 1000
            print(f"{name} after {age if age is not None else in_run:.0f} ms (run_gui: {in_run:.0f} ms; "
                  f"llama_cpp imported: {'llama_cpp' in sys.modules}, torch imported: {'torch' in sys.modules})",
                  file=sys.stderr, flush=True)
        if self.quit_at and name.endswith(self.quit_at):
            QTimer.singleShot(0, self.window.close)


def run_gui() -> int:
    """Open the main window and run the event loop; returns the exit code."""
    started = time.perf_counter()
    app = create_app()
    # Python's cycle collector runs on whichever thread happens to allocate; a Qt object it frees on a
    # worker thread (a model, audit or export thread) is destroyed there, which Qt warns about or crashes on.
    # Collect on the GUI thread only, on a timer (pyqtgraph's GarbageCollector).
    collector = GarbageCollector(interval=1.0)
    window = MainWindow(AppSettings())
    report = _StartupReport(window, started)
    window.show()

    def shown() -> None:
        report.milestone("window shown")
        if report.quit_at != "shown":
            window.service.model_loaded.connect(lambda _loaded: report.milestone("model ready"))
            window.start()

    QTimer.singleShot(0, shown)
    code = app.exec()
    window.shutdown()
    collector.timer.stop()
    return code
