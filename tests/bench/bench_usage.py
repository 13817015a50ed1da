"""Usage statistics at scale: a ledger of --rows generations (1,000,000 by default) and the time of
`usage_report` (7, 30, 90 days and all time, each per model, workflow and source, plus the daily
series), against the same numbers computed by scanning the generation log.

The ledger is built fast by bulk-inserting plain rows (not chained, FTS triggers off); the usage
trigger stays on, so the daily aggregate is kept exactly as in use. Also times the trigger's cost
on chained appends.

    python tests/bench/bench_usage.py [--rows 1000000] [--days 365] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.store import Ledger, open_db  # noqa: E402
from app.core.store.usage import usage_report  # noqa: E402
from tests.core.records import record  # noqa: E402

MODELS = [(f"{i:x}" * 64)[:64] for i in range(1, 6)]
WORKFLOWS = [f"workflow-{i}" for i in range(12)] + [None]
SOURCES = ("chat", "cli", "batch", "server", "import", "lab")
CHUNK = 50_000
BASE_COLUMNS = ("uuid", "started_at", "source", "workflow", "model_sha256", "model_name", "mode", "prompt",
                "response", "prompt_tokens", "completion_tokens", "duration_ms", "status")


def build(path: Path, rows: int, days: int, seed: int) -> float:
    """Bulk-insert `rows` generations spread over `days` days; returns seconds taken."""
    db = open_db(path)
    conn = db.conn
    fts = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                          "AND name LIKE 'generations_a%'")]
    for name in fts:  # the FTS triggers (generations_ai/_ad/_au) cost far more than the rows; not measured here
        conn.execute(f"DROP TRIGGER {name}")
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    sql = (f"INSERT INTO generations ({', '.join(BASE_COLUMNS)}) VALUES ({', '.join('?' for _ in BASE_COLUMNS)})")
    start = time.perf_counter()
    for first in range(0, rows, CHUNK):
        batch = []
        for i in range(first, min(rows, first + CHUNK)):
            when = now - timedelta(seconds=rng.random() * days * 86_400)
            model = rng.randrange(len(MODELS))
            batch.append((f"bench-{i}", when.isoformat(timespec="microseconds"), rng.choice(SOURCES),
                          rng.choice(WORKFLOWS), MODELS[model], f"Model {model}", "chat", f"p{i}", f"r{i}",
                          rng.randint(5, 500), rng.randint(1, 800), rng.random() * 5000,
                          "ok" if rng.random() > 0.02 else "error"))
        with conn:
            conn.executemany(sql, batch)
    seconds = time.perf_counter() - start
    db.close()
    return seconds


def scan_report(db, windows) -> None:  # noqa: ANN001 - the same numbers, straight from the log
    for days in windows:
        where = "" if days is None else f"WHERE started_at >= date('now', '-{days - 1} days')"
        for column in ("model_sha256", "workflow", "source"):
            db.execute(f"SELECT {column}, count(*), sum(prompt_tokens), sum(completion_tokens), sum(duration_ms) "
                       f"FROM generations {where} GROUP BY {column}").fetchall()


def timed(func, repeat: int) -> list[float]:  # noqa: ANN001
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-scan", action="store_true", help="Skip timing the scan of the log.")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="stillroom-bench-usage-"))
    path = folder / "ledger.db"
    build_s = build(path, args.rows, args.days, args.seed)
    print(f"built {args.rows:,} rows over {args.days} days in {build_s:.1f} s ({args.rows / build_s:,.0f} rows/s)")

    db = open_db(path, readonly=True)
    aggregate_rows = db.execute("SELECT count(*) FROM usage_daily").fetchone()[0]
    first = timed(lambda: usage_report(db), 1)[0]
    report_ms = timed(lambda: usage_report(db), args.repeat)
    one_window = timed(lambda: usage_report(db, (30,)), args.repeat)
    print(f"usage_daily holds {aggregate_rows:,} rows (one per day and model, workflow or source)")
    print(f"usage_report, 7/30/90/all: first {first:.0f} ms, median {statistics.median(report_ms):.0f} ms, "
          f"max {max(report_ms):.0f} ms")
    print(f"usage_report, 30 days:     median {statistics.median(one_window):.0f} ms")
    totals = usage_report(db, (None,))[0].totals
    count = db.execute("SELECT count(*) FROM generations").fetchone()[0]
    assert totals.generations == count, (totals.generations, count)
    if not args.no_scan:
        scan = timed(lambda: scan_report(db, (7, 30, 90, None)), 1)[0]
        print(f"the same groups by scanning the log: {scan:.0f} ms")
    db.close()

    ledger = Ledger.open(folder / "append.db")
    rows = [record(i) for i in range(2_000)]
    with_trigger = timed(lambda: [ledger.append(row) for row in rows[:1_000]], 1)[0]
    ledger.db.execute("DROP TRIGGER generations_usage_daily")
    without = timed(lambda: [ledger.append(row) for row in rows[1_000:]], 1)[0]
    ledger.close()
    print(f"1,000 chained appends: {with_trigger:.0f} ms with the usage trigger, {without:.0f} ms without")


if __name__ == "__main__":
    main()
