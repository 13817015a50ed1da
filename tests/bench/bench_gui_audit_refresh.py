"""The Audit view open while new generations arrive: what a chat turn costs the UI thread.

Opens the real AuditView (offscreen unless QT_QPA_PLATFORM says otherwise) on a ledger, runs its
audit to the end (stored scores and per-workflow audits are read back; an unaudited ledger is scored
first), then, --refreshes times: appends one generation to a workflow (as a chat turn does, through
Ledger), asks the view to refresh (what ledger_changed's timer calls) and waits until the refreshed
map is shown; then as many again with the timeline shown instead of the map. A 5 ms timer on the UI thread records, from the refresh's start to 100 ms after the
map is redrawn, the UI thread's own CPU time between two ticks (a stall is CPU time on the UI thread:
the operating system alone can hold a process longer on a loaded machine) and the wall-clock gaps.
Not a test: prints numbers. With no --ledger, seeds a small one.

    python tests/bench/bench_gui_audit_refresh.py --ledger PATH [--refreshes 5] [--workflow NAME]

The view writes its scores, aggregates and map cache into the ledger's folder: give it a copy
(bench_million.py --audit-view runs this on its own scratch copy, already audited).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

STALL_MS = 50
AUDIT_TIMEOUT_S = 3 * 3600


def wait_for(app: QApplication, done, timeout_s: float) -> None:  # noqa: ANN001
    """Turn the event loop until done() or the timeout."""
    deadline = time.perf_counter() + timeout_s
    while not done():
        if time.perf_counter() > deadline:
            raise TimeoutError("the Audit view did not finish in time")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.002)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ledger", help="a ledger to open in place (give a copy); default: a small seeded one")
    parser.add_argument("--refreshes", type=int, default=5)
    parser.add_argument("--workflow", default="workflow-7", help="the workflow the new generations join")
    args = parser.parse_args()
    from app.core.audit.embeddings import Encoder
    from app.core.audit.patterns import load_library
    from app.core.store import Ledger
    from app.ui.audit.audit_view import AuditView
    from app.workers.db_executor import DbExecutor
    from tests.core.records import record

    if args.ledger:
        path = Path(args.ledger)
    else:
        from tests.bench.bench_million import prompt_of
        path = Path(tempfile.mkdtemp(prefix="stillroom-bench-audit-refresh-")) / "ledger.db"
        ledger = Ledger.open(path)
        ledger.append_many([record(i, prompt=prompt_of(i), workflow=f"workflow-{i % 10}") for i in range(2_000)])
        ledger.close()
    app = QApplication.instance() or QApplication([])
    executor = DbExecutor(path)
    executor.start()
    view = AuditView(executor, path, encoder=Encoder(), library=load_library())
    view.resize(1280, 800)
    view.show()
    finished: list[object] = []
    view.audit_finished.connect(finished.append)
    clock = QElapsedTimer()
    clock.start()
    view.run_audit()
    wait_for(app, lambda: bool(finished) and not view.running, AUDIT_TIMEOUT_S)
    points = len(view.map.data.generation_ids) if view.map.data is not None else 0
    print(f"the view's audit and map: {clock.elapsed() / 1000:.1f} s, {points:,} points shown", flush=True)
    ledger = Ledger.open(path)
    next_id = int(ledger.db.execute("SELECT coalesce(max(id), 0) FROM generations").fetchone()[0]) + 1
    busiest, gaps, seconds = [], [], []
    rounds = [(tab, i) for tab in ("map", "timeline") for i in range(args.refreshes)]
    for tab, round_ in rounds:
        if round_ == 0:  # the refreshes with the map shown, then with the timeline shown
            view.plots.setCurrentWidget(view.map if tab == "map" else view.timeline)
            settle = time.perf_counter() + 0.5
            wait_for(app, lambda: time.perf_counter() > settle, 60)
        ledger.append_many([record(next_id, prompt=f"Explain tides to a child in {next_id} sentences.",
                                   workflow=args.workflow)])
        next_id += 1
        walls: list[float] = []
        busy: list[float] = []
        last = [time.perf_counter(), time.thread_time()]

        def tick() -> None:
            now = [time.perf_counter(), time.thread_time()]
            walls.append((now[0] - last[0]) * 1000)
            busy.append((now[1] - last[1]) * 1000)
            last[:] = now

        ticker = QTimer()
        ticker.setInterval(5)
        ticker.timeout.connect(tick)
        finished.clear()
        ticker.start()
        start = time.perf_counter()
        view._refresh_now()  # what ledger_changed's timer calls, 2 s after a chat turn
        wait_for(app, lambda: bool(finished) and not view.running, 600)
        elapsed = time.perf_counter() - start
        settle = time.perf_counter() + 0.1  # the map's redraw after the new data
        wait_for(app, lambda: time.perf_counter() > settle, 5)
        ticker.stop()
        shown = len(view.map.data.generation_ids)
        busiest.append(max(busy))
        gaps.append(max(walls))
        seconds.append(elapsed)
        print(f"refresh {round_ + 1} with the {tab} shown: refreshed and shown in {elapsed * 1000:.0f} ms ({shown:,} points); "
              f"UI thread's longest CPU time between two 5 ms ticks {max(busy):.1f} ms, median "
              f"{statistics.median(busy):.1f}; longest wall gap {max(walls):.0f} ms over {len(walls)} ticks",
              flush=True)
    ledger.close()
    print(f"over {len(rounds)} refreshes: longest UI-thread CPU between ticks {max(busiest):.1f} ms "
          f"(limit {STALL_MS} ms: {'met' if max(busiest) < STALL_MS else 'NOT met'}); refresh to map shown, "
          f"median {statistics.median(seconds) * 1000:.0f} ms; load average "
          f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    view.shutdown()
    executor.stop()


if __name__ == "__main__":
    main()
