"""Take README's screenshot of the main window: a fresh data folder, real turns from the bundled chat
model (SmolLM2-135M-Instruct) with its own sampling defaults, every view in the navigation.

Run under a virtual X server so that the window is drawn as on a desktop (Qt's xcb plugin needs
the libxcb-cursor0 family of packages, as any X11 desktop has):

    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python assets/make_screenshot.py [assets/screenshot-main.png]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "xcb")  # the X server that xvfb-run starts, as on a desktop

from tests.bench.bench_gui_launch import fresh_home, model_store  # noqa: E402

SIZE = (1360, 840)
EARLIER = ("What are the primary colours?", "Write a haiku about rain.")
TURNS = ("What is the capital of France? Answer in one sentence.",
         "Explain photosynthesis to a 10-year-old in two sentences.")
SEED = 1


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "assets" / "screenshot-main.png"
    os.environ["STILLROOM_HOME"] = str(fresh_home(model_store()))

    from PySide6.QtWidgets import QApplication

    from app.ui.application import create_app
    from app.ui.main_window import MainWindow
    from app.ui.settings import AppSettings

    app = create_app([])
    settings = AppSettings()
    settings.theme = "light"
    window = MainWindow(settings)
    window.resize(*SIZE)
    window.show()
    window.start()

    def wait(condition, timeout: float = 300.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("the window did not get there in time")
            app.processEvents()
            time.sleep(0.01)

    def turn(text: str) -> None:
        done: list[object] = []
        window.chat.sampling.seed.setValue(SEED)  # the model's defaults otherwise, as on a first run
        window.chat.turn_finished.connect(done.append)
        window.chat.composer.setPlainText(text)
        window.chat.send()
        wait(lambda: bool(done))
        window.chat.turn_finished.disconnect(done.append)

    wait(lambda: window.service.loaded is not None and not window.service.busy_text)
    for text in EARLIER:
        window.chat.new_conversation()
        turn(text)
    window.chat.new_conversation()
    for text in TURNS:
        turn(text)
    wait(lambda: window.ledger.last_verify is not None and window.db.pending == 0)
    window.chat.composer.setPlainText("Which plants do not photosynthesise?")
    window.chat.transcript.verticalScrollBar().setValue(0)
    for _ in range(30):
        app.processEvents()
        time.sleep(0.02)
    window.grab().save(str(out))
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")
    window.close()
    QApplication.quit()


if __name__ == "__main__":
    main()
