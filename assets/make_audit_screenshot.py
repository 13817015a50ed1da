"""Take the screenshots of the Audit view (map, then timeline; shown in README.md and docs/desktop.md)
on a seeded ledger (flagged and ordinary workflows side by side). Run under a virtual X server:

    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python assets/make_audit_screenshot.py [assets/screenshot-audit.png]
"""

import os, sys, time
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]; sys.path.insert(0, str(ROOT))
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "assets" / "screenshot-audit.png"
os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
from tests.bench.bench_gui_launch import fresh_home, model_store
home = fresh_home(model_store()); os.environ["STILLROOM_HOME"] = str(home)
from datetime import datetime, timedelta, timezone
from app.core.store import Ledger
from tests.core.records import record
from tests.core.audit_workflows import PATTERN_WORKFLOWS, BENIGN_WORKFLOWS
ledger = Ledger.open(home / "ledger.db"); start = datetime(2026, 3, 2, 9, tzinfo=timezone.utc); n = 0
for name, prompts in [("capitals-sweep", PATTERN_WORKFLOWS["templated_sweep"]), ("judge-run", PATTERN_WORKFLOWS["autograding"]),
                      ("prompt-extraction", PATTERN_WORKFLOWS["identity_probe"]), ("coding help", BENIGN_WORKFLOWS["coding help"]),
                      ("tutoring", BENIGN_WORKFLOWS["tutoring"]), ("translation", BENIGN_WORKFLOWS["translation"])]:
    ledger.append_many([record(n + i, workflow=name, prompt=p, source="server", started_at=(start + timedelta(minutes=3 * (n + i))).isoformat()) for i, p in enumerate(prompts)])
    n += len(prompts)
ledger.close()
from PySide6.QtWidgets import QApplication
from app.ui.application import create_app
from app.ui.main_window import MainWindow
from app.ui.settings import AppSettings
app = create_app([]); settings = AppSettings(); settings.theme = "light"
window = MainWindow(settings); window.resize(1360, 840); window.show(); window.start()
def wait(cond, timeout=240):
    d = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < d
        app.processEvents(); time.sleep(0.01)
wait(lambda: window.service.loaded is not None and not window.service.busy_text)
window.show_view("audit")
view = window.stack.currentWidget()
view.run_audit()
wait(lambda: not view.running)
view.project("umap")  # the first fit takes a minute or two
wait(lambda: not view.running, timeout=900)
view.table.select_workflow("judge-run")
for _ in range(50): app.processEvents(); time.sleep(0.02)
window.grab().save(str(OUT)); print(f"wrote {OUT}")
view.plots.setCurrentIndex(1)  # the timeline
for _ in range(50): app.processEvents(); time.sleep(0.02)
TIMELINE = OUT.with_name(OUT.stem + "-timeline.png")
window.grab().save(str(TIMELINE)); print(f"wrote {TIMELINE}")
window.close(); QApplication.quit()
