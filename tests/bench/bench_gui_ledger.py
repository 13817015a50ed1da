"""The Ledger view over a 100,000-row ledger: time to open it, to scroll to the end, to search.

Seeds the rows through Ledger.append_many (hash-chained, FTS-indexed), opens the real main window
(offscreen unless QT_QPA_PLATFORM says otherwise), waits for start-up to settle (model loaded,
start-up chain check done), then times each action until its rows are painted. A 5 ms timer on
the UI thread records the longest the event loop was blocked meanwhile. Not a test: prints numbers.

    python tests/bench/bench_gui_ledger.py [--rows 100000] [--repeat 5] [--ledger PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from PySide6.QtCore import QElapsedTimer, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from tests.bench.bench_gui_launch import fresh_home, model_store, scratch_ledger  # noqa: E402

CHUNK = 5_000
WORDS = ("river", "lantern", "harbour", "orchard", "glacier", "meadow", "copper", "violet", "thunder", "quartz")
TARGET_MS = 200
TIMEOUT_MS = 30_000


def seed(home: Path, rows: int) -> float:
    """Append `rows` generation rows in chunks; returns seconds taken."""
    from app.core.store import Ledger

    ledger = Ledger.open(home / "ledger.db")
    start = time.perf_counter()
    for first in range(0, rows, CHUNK):
        batch = []
        for n in range(first, min(rows, first + CHUNK)):
            a, b = WORDS[n % 10], WORDS[(n // 10) % 10]
            batch.append({
                "source": ("chat", "cli", "batch")[n % 3], "workflow": f"workflow-{n % 5}", "mode": "chat",
                "model_name": "Gemma 3 270m", "model_sha256": "c0" * 32, "status": "ok" if n % 50 else "cancelled",
                "prompt": f"Question {n}: tell me about the {a} and the {b}.",
                "response": f"Answer {n}. The {a} is near the {b}; " + "more words follow here. " * 8,
                "messages": [{"role": "user", "content": f"Question {n}"}], "params": {"temperature": 0.7},
                "prompt_tokens": 20, "completion_tokens": 60, "tokens_per_s": 30.0,
            })
        ledger.append_many(batch)
    ledger.close()
    return time.perf_counter() - start


class StallMeter:
    """Longest gap between ticks of a 5 ms UI-thread timer (how long the event loop was blocked)."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.clock = QElapsedTimer()
        self.longest = 0.0
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.longest = 0.0
        self.clock.start()
        self.timer.start()

    def _tick(self) -> None:
        self.longest = max(self.longest, self.clock.restart())

    def stop(self) -> float:
        self.timer.stop()
        return self.longest


def wait_until(app: QApplication, condition: Callable[[], bool], timeout_ms: int = TIMEOUT_MS) -> None:
    deadline = time.perf_counter() + timeout_ms / 1000
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the view did not settle")
        app.processEvents()
        time.sleep(0.0005)


def timed(app: QApplication, meter: StallMeter, action: Callable[[], None], done: Callable[[], bool]) -> tuple[float, float]:
    """(ms from `action` until `done` and the table repainted, longest UI stall in ms)."""
    meter.start()
    start = time.perf_counter()
    action()
    wait_until(app, done)
    app.processEvents()
    elapsed = (time.perf_counter() - start) * 1000
    return elapsed, meter.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ledger", help="open a copy of this ledger instead of seeding (e.g. bench_million.py's)")
    parser.add_argument("--search", default="lantern glacier", help="a search with few matches")
    parser.add_argument("--common", default="river", help="a search with many matches "
                        "(for bench_million.py's ledger: --search 'Hanseatic Compare' --common tides)")
    args = parser.parse_args()
    home = fresh_home(model_store(), scratch_ledger(args.ledger))
    os.environ["STILLROOM_HOME"] = str(home)
    if args.ledger:
        print(f"opened a copy of {Path(args.ledger).name}")
    else:
        seconds = seed(home, args.rows)
        print(f"seeded {args.rows:,} rows in {seconds:.1f} s ({args.rows / seconds:,.0f} rows/s)")

    from app.core.store.queries import LogFilter
    from app.ui.application import create_app
    from app.ui.main_window import MainWindow
    from app.ui.settings import AppSettings

    app = create_app([])
    window = MainWindow(AppSettings())
    window.resize(1280, 820)
    window.show()
    shown_at = time.perf_counter()
    wait_until(app, lambda: time.perf_counter() - shown_at > 0.3)  # let the first paint happen
    meter = StallMeter()
    meter.start()
    window.start()
    view, model, table = window.ledger, window.ledger.model, window.ledger.table
    wait_until(app, lambda: window.service.loaded is not None and view.last_verify is not None
               and not model.loading and window.db.pending == 0, 900_000)
    settled = time.perf_counter() - shown_at - 0.3
    print(f"start-up settled in {settled:.1f} s (model loaded, chain of {view.last_verify.rows:,} rows "
          f"{'intact' if view.last_verify.ok else 'BROKEN'}, table shows {model.rowCount():,} rows); "
          f"longest UI stall meanwhile {meter.stop():.1f} ms")
    results: dict[str, list[tuple[float, float]]] = {key: [] for key in
                                                     ("open", "cold", "end", "search", "common", "common_end", "clear")}
    last = lambda: model.rowCount() - 1  # noqa: E731
    for _ in range(args.repeat):
        window.show_view("chat")
        app.processEvents()
        results["open"].append(timed(app, meter, lambda: window.show_view("ledger"),
                                     lambda: model.is_loaded(0)))
        results["cold"].append(timed(app, meter, lambda: view.apply_filter(LogFilter()),
                                     lambda: not model.loading and model.is_loaded(0)))
        results["end"].append(timed(app, meter, table.scrollToBottom,
                                    lambda: model.is_loaded(last()) and window.db.pending == 0))
        table.scrollToTop()
        results["search"].append(timed(app, meter, lambda: view.filters.set_search(args.search),
                                       lambda: not model.loading and window.db.pending == 0))
        matches = model.rowCount()
        results["common"].append(timed(app, meter, lambda: view.filters.set_search(args.common),
                                       lambda: not model.loading and window.db.pending == 0))
        common = model.rowCount()
        results["common_end"].append(timed(app, meter, table.scrollToBottom,
                                           lambda: model.is_loaded(last()) and window.db.pending == 0))
        table.scrollToTop()
        results["clear"].append(timed(app, meter, view.filters.clear,
                                      lambda: not model.loading and window.db.pending == 0))
    labels = {
        "open": "open the Ledger view (click in the navigation)",
        "cold": "reload it cold (count + first page of 100k)",
        "end": "scroll to the end",
        "search": f"search {args.search!r} ({matches:,} matches)",
        "common": f"search {args.common!r} ({common:,} matches)",
        "common_end": "scroll to the end of those matches",
        "clear": "clear the search (back to every row)",
    }
    for key, label in labels.items():
        times = [t for t, _ in results[key]]
        stalls = [s for _, s in results[key]]
        flag = "ok" if statistics.median(times) < TARGET_MS else "OVER TARGET"
        print(f"{label:48s} median {statistics.median(times):6.1f} ms (max {max(times):6.1f}); "
              f"longest UI stall {max(stalls):5.1f} ms  [{flag}]")
    print(f"target: each under {TARGET_MS} ms; UI never blocked over 50 ms")
    window.close()


if __name__ == "__main__":
    main()
