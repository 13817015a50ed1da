"""The Merkle tree's costs: building it for an existing ledger, one inclusion proof, and appends.

- build: the migration's work on a ledger of --rows rows logged before the tree existed (target < 30 s
  at 1,000,000 rows). The rows are written straight into the generations table with distinct hashes;
  the build reads only their ids and hashes.
- proof: one inclusion proof (leaf data + hashes) against the full tree, median and 99th percentile of 1,000
  random rows (target < 5 ms at 1,000,000).
- append: commit-per-row appends with the tree against the same appends on a ledger whose schema
  stops before the tree's migration (today's append), interleaved in rounds (target ratio <= 1.10).

    python tests/bench/bench_merkle.py [--rows 1000000] [--append-rows 4000]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.store import Ledger, open_db  # noqa: E402
from app.core.store.merkle import check_inclusion  # noqa: E402
from app.core.store.migrations import migrations  # noqa: E402
from app.core.store.tree import build_tree, create_tables, prove_row, root, tree_size  # noqa: E402
from app.core.store.commitment import parse_leaf_data  # noqa: E402
from app.core.store.checkpoint import create_table  # noqa: E402
from tests.core.records import record  # noqa: E402

TREE_MIGRATION = "m011_merkle_tree"
PROOFS = 1000
ROUNDS = 8


def pre_tree_db(path: Path):
    db = open_db(path, migrate=False)
    migrations.apply(db, stop_before=TREE_MIGRATION)
    return db


def bench_build(folder: Path, rows: int) -> None:
    db = pre_tree_db(folder / "big.db")
    conn = db.conn
    start = time.perf_counter()
    batch = 50_000
    for lo in range(1, rows + 1, batch):
        conn.executemany(
            "INSERT INTO generations (id, uuid, source, status, prompt_hash, response_hash, prev_hash, row_hash) "
            "VALUES (?, ?, 'cli', 'ok', ?, ?, '', ?)",
            ((i, f"u{i}", hashlib.sha256(b"p%d" % i).hexdigest(), hashlib.sha256(b"r%d" % i).hexdigest(),
              hashlib.sha256(b"h%d" % i).hexdigest()) for i in range(lo, min(lo + batch, rows + 1))))
    conn.commit()
    print(f"wrote {rows} rows without a tree in {time.perf_counter() - start:.1f} s")

    start = time.perf_counter()
    with conn:
        create_tables(conn)
        create_table(conn)
        built = build_tree(conn)
    build_s = time.perf_counter() - start
    print(f"build tree for {built} rows: {build_s:.1f} s ({built / build_s:,.0f} rows/s; target < 30 s at 1M)")

    size = tree_size(conn)
    top = root(conn, size)
    times = []
    rng = random.Random(7)
    for _ in range(PROOFS):
        rid = rng.randint(1, size)
        start = time.perf_counter()
        data, proof = prove_row(conn, rid, size)
        times.append(time.perf_counter() - start)
        assert check_inclusion(proof, size, top, rid - 1, parse_leaf_data(data).leaf_hash())
    times.sort()
    print(f"inclusion proof at {size} rows: median {statistics.median(times) * 1000:.2f} ms, "
          f"99th percentile {times[int(len(times) * 0.99)] * 1000:.2f} ms, worst {times[-1] * 1000:.2f} ms "
          f"(the first proof reads cold pages), {len(proof)} hashes (target < 5 ms)")
    db.close()


def bench_append(folder: Path, rows: int) -> None:
    records = [record(i, response=f"Response {i}: " + "lorem ipsum dolor sit amet " * 20) for i in range(rows)]
    with_tree = Ledger.open(folder / "with-tree.db")
    without = Ledger(pre_tree_db(folder / "without-tree.db"), folder / "without-tree.db")
    per_round = rows // ROUNDS
    spent = {"with": 0.0, "without": 0.0}
    for r in range(ROUNDS):
        chunk = records[r * per_round:(r + 1) * per_round]
        order = [("with", with_tree), ("without", without)]
        if r % 2:
            order.reverse()
        for name, ledger in order:
            start = time.perf_counter()
            for row in chunk:
                ledger.append(row)
            spent[name] += time.perf_counter() - start
    done = per_round * ROUNDS
    assert with_tree.verify().ok and tree_size(with_tree.db.conn) == done
    print(f"append, commit per row, {done} rows each: with tree {done / spent['with']:,.0f} rows/s, "
          f"without {done / spent['without']:,.0f} rows/s, time ratio {spent['with'] / spent['without']:.3f} "
          "(target <= 1.10)")
    with_tree.close()
    without.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--append-rows", type=int, default=4000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="stillroom-bench-merkle-"))
    bench_append(folder, args.append_rows)
    bench_build(folder, args.rows)


if __name__ == "__main__":
    main()
