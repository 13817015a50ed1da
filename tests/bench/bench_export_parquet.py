"""Parquet export of a large ledger: rows/s and memory (Arrow's peak allocation and the process's
resident set before and after), checked against DuckDB's count and token sum.

    python tests/bench/bench_export_parquet.py [--rows 200000]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402

from app.core.store import Ledger  # noqa: E402
from app.core.store.export_parquet import export_parquet  # noqa: E402
from app.core.store.queries import LogFilter  # noqa: E402
from tests.core.records import record  # noqa: E402

APPEND_CHUNK = 5000


def rss_mb() -> float:
    """The resident set now, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="stillroom-bench-parquet-"))
    ledger = Ledger.open(folder / "ledger.db")
    start = time.perf_counter()
    for first in range(1, args.rows + 1, APPEND_CHUNK):
        ledger.append_many([record(i, model_name=f"model-{i % 5}", completion_tokens=i % 300,
                                   response=f"Response number {i}. " * 20)
                            for i in range(first, min(args.rows + 1, first + APPEND_CHUNK))])
    print(f"seeded {args.rows} rows in {time.perf_counter() - start:.1f} s")
    before = rss_mb()
    out = folder / "ledger.parquet"
    start = time.perf_counter()
    count = export_parquet(ledger.db, LogFilter(), out)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"exported {count} rows in {elapsed:.1f} s ({count / elapsed:,.0f} rows/s), {out.stat().st_size / 1e6:.0f} MB; "
          f"Arrow peak allocation {pa.default_memory_pool().max_memory() / 1e6:.0f} MB, "
          f"RSS {before:.0f} MB before, {rss_mb():.0f} MB after, process peak {peak:.0f} MB")
    total, tokens = duckdb.connect().execute(
        f"SELECT count(*), sum(completion_tokens) FROM read_parquet('{out}')").fetchone()
    expected = ledger.db.execute("SELECT count(*), sum(completion_tokens) FROM generations").fetchone()
    print(f"DuckDB: {total} rows, {tokens} completion tokens; SQLite: {expected[0]} rows, {expected[1]} "
          f"({'same' if (total, tokens) == tuple(expected) else 'DIFFERENT'})")
    ledger.close()


if __name__ == "__main__":
    main()
