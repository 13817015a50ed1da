"""Provenance matching: a dataset of 100,000 rows against a ledger of 100,000 generations (target
under 30 s and under 1 GB peak memory), and the same ledger against 1,000,000 rows (reported).

The ledger holds synthetic generations (prompts of 8-30 words, responses of 30-250 words drawn from
a 6,000-word vocabulary, so texts share words but not whole passages). Each dataset is 80% rows
copied from the ledger (with repeats at 1M), 10% edited after generation (case, punctuation,
spacing inside words, truncation to 40-90%, one to three words replaced) and 10% foreign rows.
Each match runs in a fresh process so its peak RSS (ru_maxrss) is the match's own.

    python tests/bench/bench_provenance_match.py [--ledger 100000] [--rows 100000 1000000] [--folder DIR]

--folder keeps the ledger there and reuses it in later runs (building it takes a minute or three).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.provenance.match import TRACED_EXACT, TRACED_NEAR, UNTRACED, run_match  # noqa: E402
from app.core.store import Ledger  # noqa: E402
from tests.core.records import record  # noqa: E402

TARGET_S = 30.0
TARGET_RSS_MB = 1024
SHARE_EXACT, SHARE_EDITED = 0.8, 0.1
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "an", "el", "or", "ul", "is", "pre", "con", "ment"]
EDITS = ("case", "punctuation", "spacing", "truncate", "words")


def vocabulary(rng: random.Random, size: int = 6000) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choices(SYLLABLES, k=rng.randint(1, 4))))
    return sorted(words)


def sentence_text(rng: random.Random, words: list[str], low: int, high: int) -> str:
    picked = rng.choices(words, k=rng.randint(low, high))
    out: list[str] = []
    for i, word in enumerate(picked):
        out.append(word.capitalize() if i == 0 or out[-1].endswith(".") else word)
        if rng.random() < 0.08:
            out[-1] += rng.choice([".", ",", ";", "!"])
    return " ".join(out) + "."


def edit(rng: random.Random, text: str, words: list[str], kind: str) -> str:
    if kind == "case":
        return text.upper() if rng.random() < 0.5 else text.lower()
    if kind == "punctuation":
        return "".join(ch for ch in text if ch not in ".,;!") + "!"
    if kind == "spacing":
        tokens = text.split(" ")
        i = rng.randrange(len(tokens) - 1)
        return " ".join(tokens[:i] + [tokens[i] + tokens[i + 1]] + tokens[i + 2:])
    if kind == "truncate":
        cut = int(len(text) * rng.uniform(0.4, 0.9))
        return text[:cut].rsplit(" ", 1)[0]
    tokens = text.split(" ")
    for _ in range(rng.randint(1, 3)):
        tokens[rng.randrange(len(tokens))] = rng.choice(words)
    return " ".join(tokens)


def build_ledger(path: Path, count: int, rng: random.Random, words: list[str]) -> list[tuple[str, str]]:
    ledger = Ledger.open(path)
    pairs: list[tuple[str, str]] = []
    for start in range(0, count, 5000):
        rows = []
        for i in range(start, min(count, start + 5000)):
            prompt, response = sentence_text(rng, words, 8, 30), sentence_text(rng, words, 30, 250)
            pairs.append((prompt, response))
            rows.append(record(i, prompt=prompt, response=response, workflow=f"bench-{i % 20}"))
        ledger.append_many(rows)
    ledger.close()
    return pairs


def ledger_pairs(path: Path, count: int, rng: random.Random, words: list[str]) -> list[tuple[str, str]]:
    """The ledger's (prompt, response) pairs: read back from a ledger built before, or built now."""
    if path.exists():
        ledger = Ledger.open(path)
        found = ledger.db.execute("SELECT prompt, response FROM generations ORDER BY id").fetchall()
        ledger.close()
        if len(found) == count:
            for _ in range(count):  # keep the random stream where building would have left it
                sentence_text(rng, words, 8, 30), sentence_text(rng, words, 30, 250)
            return [tuple(pair) for pair in found]
        path.unlink()
    return build_ledger(path, count, rng, words)


def build_dataset(path: Path, rows: int, pairs: list[tuple[str, str]], rng: random.Random,
                  words: list[str]) -> dict[str, int]:
    expected = {TRACED_EXACT: 0, TRACED_NEAR: 0, UNTRACED: 0}
    order = list(range(len(pairs)))
    rng.shuffle(order)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            draw = rng.random()
            prompt, response = pairs[order[i % len(order)]]
            if draw < SHARE_EXACT:
                expected[TRACED_EXACT] += 1
            elif draw < SHARE_EXACT + SHARE_EDITED:
                response = edit(rng, response, words, EDITS[i % len(EDITS)])
                expected[TRACED_NEAR] += 1
            else:
                prompt, response = sentence_text(rng, words, 8, 30), sentence_text(rng, words, 30, 250)
                expected[UNTRACED] += 1
            handle.write(json.dumps({"prompt": prompt, "response": response}) + "\n")
    return expected


def match_only(dataset: str, ledger: str) -> None:
    """Child process: match and print the time, peak RSS and counts as JSON."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime
    start = time.perf_counter()
    report = run_match(dataset, ledger)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    scores = [score for _, _, score in report.near]
    print(json.dumps({"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime - cpu_before,
                      "peak_mb": usage.ru_maxrss / 1024, "counts": report.counts,
                      "rows": report.rows, "min_near_score": min(scores) if scores else None}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ledger", type=int, default=100_000)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--folder", help="keep the ledger here and reuse it in later runs")
    parser.add_argument("--match-only", nargs=2, metavar=("DATASET", "LEDGER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.match_only:
        match_only(*args.match_only)
        return
    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="stillroom-bench-provenance-"))
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    words = vocabulary(rng)
    start = time.perf_counter()
    pairs = ledger_pairs(folder / f"ledger-{args.ledger}.db", args.ledger, rng, words)
    print(f"ledger of {args.ledger:,} generations ready in {time.perf_counter() - start:.1f} s", flush=True)
    results = []
    for rows in args.rows:
        dataset = folder / f"dataset-{rows}.jsonl"
        expected = build_dataset(dataset, rows, pairs, rng, words)
        child = subprocess.run([sys.executable, __file__, "--match-only", str(dataset), str(folder / f"ledger-{args.ledger}.db")],
                               check=True, capture_output=True, text=True)
        result = json.loads(child.stdout.strip().splitlines()[-1])
        results.append((rows, dataset.stat().st_size, expected, result))
        dataset.unlink()
    print(f"\n{'rows':>10} {'MB':>6} {'seconds':>8} {'CPU s':>6} {'rows/s':>8} {'peak RSS MB':>12} "
          f"{'exact':>15} {'near':>15} {'untraced':>15} {'min near score':>15}")
    for rows, size, expected, result in results:
        counts = result["counts"]
        cells = [f"{counts[s]:>7}/{expected[s]:<7}" for s in (TRACED_EXACT, TRACED_NEAR, UNTRACED)]
        print(f"{rows:>10,} {size / 1e6:>6.0f} {result['seconds']:>8.1f} {result['cpu']:>6.1f} {rows / result['seconds']:>8.0f} "
              f"{result['peak_mb']:>12.0f} {' '.join(cells)} {result['min_near_score'] or 0:>15.3f}")
    print(f"(found/planted per status; target at 100,000 rows: < {TARGET_S:.0f} s, < {TARGET_RSS_MB} MB peak RSS)")
    if not args.folder:
        shutil.rmtree(folder, ignore_errors=True)
    first = results[0][3]
    if args.rows[0] == 100_000 and (first["seconds"] >= TARGET_S or first["peak_mb"] >= TARGET_RSS_MB):
        print("TARGET MISSED")
        sys.exit(1)


if __name__ == "__main__":
    main()
