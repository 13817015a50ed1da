"""Time from launching `python -m app` to the main window on screen (and to the model being ready).

Each run starts a fresh process with its own STILLROOM_HOME (the default model hard-linked in, as a
user's second launch would find it) and reads the app's startup report from stderr. Not a test:
prints numbers.

    python tests/bench/bench_gui_launch.py [--runs 5] [--ledger PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TIMEOUT_S = 120


def model_store() -> Path:
    """A data folder holding the assembled default model, made once and reused between runs."""
    store = Path(tempfile.gettempdir()) / "stillroom-bench-model-store"
    if not any(store.glob("models/*.gguf")):
        subprocess.run([sys.executable, "-c", "from app.core.store import Ledger; "
                        "from app.core.models.default_model import default_model_path; "
                        "import os; default_model_path(Ledger.open(os.path.join(os.environ['STILLROOM_HOME'], 'ledger.db')).db)"],
                       cwd=ROOT, env={**os.environ, "STILLROOM_HOME": str(store)}, check=True)
        (store / "ledger.db").unlink(missing_ok=True)
    return store / "models"


def fresh_home(models: Path, ledger: Path | None = None) -> Path:
    """A data folder with the model linked in, and `ledger` (a scratch copy: the app writes to it) linked in as
    its ledger when given."""
    home = Path(tempfile.mkdtemp(prefix="stillroom-bench-launch-"))
    (home / "models").mkdir()
    if ledger is not None:
        os.link(ledger, home / "ledger.db")
    for item in models.iterdir():
        try:
            os.link(item, home / "models" / item.name)
        except OSError:
            shutil.copy2(item, home / "models" / item.name)
    return home


def scratch_ledger(path: str | None) -> Path | None:
    """A scratch copy of a seeded ledger (e.g. bench_million.py's), which the launched apps may write to."""
    if path is None:
        return None
    copy = Path(tempfile.mkdtemp(prefix="stillroom-bench-ledger-")) / "ledger.db"
    shutil.copyfile(path, copy)
    return copy


def launch(models: Path, until: str, ledger: Path | None = None) -> tuple[float, float, str]:
    """(ms from Popen to the report line, ms the app measured from its process start, the line)."""
    home = fresh_home(models, ledger)
    env = {**os.environ, "STILLROOM_HOME": str(home), "STILLROOM_REPORT_STARTUP": "1",
           "STILLROOM_QUIT_AFTER_STARTUP": until}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith(until.replace("ready", "model ready").replace("shown", "window shown")):
                outside = (time.perf_counter() - start) * 1000
                inside = float(line.split(" after ")[1].split(" ms")[0])
                process.wait(TIMEOUT_S)
                return outside, inside, line.strip()
        raise RuntimeError(f"the app exited without reporting '{until}' (exit code {process.wait()})")
    finally:
        if process.poll() is None:
            process.kill()
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ledger", help="launch with a copy of this ledger (e.g. bench_million.py's 1M rows)")
    args = parser.parse_args()
    models = model_store()
    ledger = scratch_ledger(args.ledger)
    if ledger is not None:
        print(f"with a copy of {Path(args.ledger).name} as the ledger")
    for until in ("shown", "ready"):
        results = [launch(models, until, ledger) for _ in range(args.runs)]
        outside = [r[0] for r in results]
        inside = [r[1] for r in results]
        label = "window shown" if until == "shown" else "model ready "
        print(f"{label}: median {statistics.median(outside):.0f} ms from spawn "
              f"(min {min(outside):.0f}, max {max(outside):.0f}); app's own count from process start: "
              f"median {statistics.median(inside):.0f} ms  [{args.runs} runs, platform "
              f"{os.environ['QT_QPA_PLATFORM']}]")
        print(f"  last report: {results[-1][2]}")
    print("target: window shown within 2000 ms")
    if ledger is not None:
        shutil.rmtree(ledger.parent)


if __name__ == "__main__":
    main()
