"""Start the desktop app: QApplication, theme, the main window; the model loads after it is shown.

Environment: STILLROOM_REPORT_STARTUP=1 prints "window shown after N ms" (from process start) to
stderr once the window is on screen; STILLROOM_QUIT_AFTER_SHOWN=1 then closes it (for benchmarks).
"""

from __future__ import annotations

import os
import sys
import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.core.paths import APP_NAME
from app.ui.icons import app_icon
from app.ui.main_window import MainWindow
from app.ui.settings import AppSettings

REPORT_ENV = "STILLROOM_REPORT_STARTUP"
QUIT_ENV = "STILLROOM_QUIT_AFTER_SHOWN"


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
    """The QApplication with Stillroom's name, icon and theme (reuses an existing instance)."""
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setDesktopFileName("stillroom")
    app.setWindowIcon(app_icon())
    return app


def run_gui() -> int:
    """Open the main window and run the event loop; returns the exit code."""
    started = time.perf_counter()
    app = create_app()
    window = MainWindow(AppSettings())
    window.show()

    def shown() -> None:
        if os.environ.get(REPORT_ENV):
            age = process_age_ms()
            since_import = (time.perf_counter() - started) * 1000
            print(f"window shown after {age if age is not None else since_import:.0f} ms "
                  f"(run_gui: {since_import:.0f} ms; llama_cpp imported: {'llama_cpp' in sys.modules}, "
                  f"torch imported: {'torch' in sys.modules})", file=sys.stderr, flush=True)
        if os.environ.get(QUIT_ENV):
            QTimer.singleShot(0, window.close)
        else:
            window.start()

    QTimer.singleShot(0, shown)
    code = app.exec()
    window.shutdown()
    return code
