"""Ledger write throughput with hash chaining, against plain sqlite-utils inserts of the same rows.

One commit per generation (how generations are logged) and one transaction per batch (how imports
are logged); both on a real WAL SQLite file with the FTS index. The chained append is also timed
side by side without the Merkle tree (a database whose schema stops before the tree's migration):
the tree may cost at most 10%.

    python tests/bench/bench_ledger_write.py [--rows 20000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.store import Ledger, open_db  # noqa: E402
from app.core.store.ledger import prepare_row  # noqa: E402
from app.core.store.migrations import migrations  # noqa: E402
from tests.core.records import record  # noqa: E402

BATCH = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="stillroom-bench-ledger-"))
    rows = [record(i, response=f"Response {i}: " + "lorem ipsum dolor sit amet " * 20) for i in range(args.rows)]

    plain = open_db(folder / "plain.db")
    prepared = [prepare_row(r) for r in rows]
    start = time.perf_counter()
    for row in prepared:
        with plain.conn:
            plain["generations"].insert(row)
    plain_single = args.rows / (time.perf_counter() - start)

    ledger = Ledger.open(folder / "single.db")
    start = time.perf_counter()
    for row in rows:
        ledger.append(row)
    single = args.rows / (time.perf_counter() - start)

    treeless_db = open_db(folder / "no-tree.db", migrate=False)
    migrations.apply(treeless_db, stop_before="m011_merkle_tree")
    treeless = Ledger(treeless_db, folder / "no-tree.db")
    start = time.perf_counter()
    for row in rows:
        treeless.append(row)
    single_no_tree = args.rows / (time.perf_counter() - start)

    batched_ledger = Ledger.open(folder / "batched.db")
    start = time.perf_counter()
    for i in range(0, args.rows, BATCH):
        batched_ledger.append_many(rows[i:i + BATCH])
    batched = args.rows / (time.perf_counter() - start)

    start = time.perf_counter()
    result = ledger.verify()
    verify_rate = result.rows / (time.perf_counter() - start)
    print(f"{args.rows} rows of ~600 bytes, WAL, FTS5 index")
    print(f"plain sqlite-utils insert, commit per row: {plain_single:8.0f} rows/s")
    print(f"ledger append (chained), commit per row:   {single:8.0f} rows/s  "
          f"(ratio {single / plain_single:.2f}; target >= 5000 rows/s)")
    print(f"ledger append without the Merkle tree:     {single_no_tree:8.0f} rows/s  "
          f"(the tree's time ratio {single_no_tree / single:.3f}; target <= 1.10)")
    print(f"ledger append_many (chained), {BATCH}/txn:  {batched:8.0f} rows/s")
    print(f"verify: {verify_rate:8.0f} rows/s, chain intact: {result.ok}")


if __name__ == "__main__":
    main()
