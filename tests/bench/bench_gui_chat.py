"""UI responsiveness while the model loads and a chat turn streams, and the turn's speed in the window.

Opens the real main window (offscreen unless QT_QPA_PLATFORM says otherwise) on a fresh data folder,
records the longest the UI thread's event loop was blocked during the model load and during a
streamed turn (a 5 ms timer), and the turn's tokens/s and time to first token. Not a test.

    python tests/bench/bench_gui_chat.py [--max-tokens 96] [--turns 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.bench.bench_gui_launch import fresh_home, model_store  # noqa: E402
from tests.bench.bench_gui_ledger import StallMeter, wait_until  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--turns", type=int, default=3)
    args = parser.parse_args()
    os.environ["STILLROOM_HOME"] = str(fresh_home(model_store()))

    from app.core.models.sampling import SamplingParams
    from app.ui.application import create_app
    from app.ui.main_window import MainWindow
    from app.ui.settings import AppSettings

    app = create_app([])
    settings = AppSettings()
    settings.set_sampling(SamplingParams(max_tokens=args.max_tokens, temperature=0.8))
    window = MainWindow(settings)
    window.show()
    shown_at = time.perf_counter()
    wait_until(app, lambda: time.perf_counter() - shown_at > 0.3)  # the first paint is not the load
    meter = StallMeter()
    meter.start()
    window.start()
    wait_until(app, lambda: window.service.loaded is not None and not window.service.busy_text, 120_000)
    load_stall = meter.stop()
    loaded = window.service.loaded
    wait_until(app, lambda: window.ledger.last_verify is not None and window.db.pending == 0)
    print(f"model load ({loaded.info.name}, {loaded.n_threads} threads): longest UI stall {load_stall:.1f} ms")
    rates, ttfts, stalls = [], [], []
    for turn in range(args.turns):
        window.chat.composer.setPlainText(f"Write a short poem about the sea, number {turn + 1}.")
        outcomes: list = []
        window.chat.turn_finished.connect(outcomes.append)
        meter.start()
        window.chat.send()
        wait_until(app, lambda: bool(outcomes), 300_000)
        stalls.append(meter.stop())
        window.chat.turn_finished.disconnect(outcomes.append)
        result = outcomes[0].result
        rates.append(result.tokens_per_s or 0.0)
        ttfts.append(result.ttft_ms or 0.0)
        print(f"turn {turn + 1}: {result.completion_tokens} tokens, {result.tokens_per_s or 0:.1f} tok/s, "
              f"first token after {result.ttft_ms or 0:.0f} ms; longest UI stall {stalls[-1]:.1f} ms")
    print(f"median {statistics.median(rates):.1f} tok/s in the window; longest UI stall over all turns "
          f"{max(stalls):.1f} ms (target: never over 50 ms)")
    window.close()


if __name__ == "__main__":
    main()
