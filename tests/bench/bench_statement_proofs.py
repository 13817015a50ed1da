"""A provenance statement's inclusion proofs: their size per traced row and the time to verify them
without the ledger (targets: at most 64 bytes a row on average, under 10 s, at 100,000 traced rows).

Two datasets of --rows rows are published from one ledger: "run", every row of one run of
generations (ids contiguous), and "sparse", every --stride-th row of a ledger --stride times bigger
(only with --sparse, it appends that many rows). Reported: the compressed binary proof per row
(what the section's `proof` decodes to), the base64 text it becomes in the statement, the growth of
the statement file per row, and verify_statement's wall time in a folder without the ledger.

    python tests/bench/bench_statement_proofs.py [--rows 100000] [--sparse --stride 4]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--sparse", action="store_true")
    parser.add_argument("--stride", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-proofs-"))
    os.environ["STILLROOM_HOME"] = str(work / "home")
    from app.core.provenance.match import run_match
    from app.core.provenance.statement import Declared
    from app.core.provenance.verify import verify_statement
    from app.core.provenance.write import write_provenance
    from app.core.store import Ledger
    from tests.core.records import record

    stride = args.stride if args.sparse else 1
    total = args.rows * stride
    ledger = Ledger.open(work / "home" / "ledger.db")
    started = time.perf_counter()
    for start in range(0, total, 10_000):
        ledger.append_many([record(i) for i in range(start, min(total, start + 10_000))])
    print(f"ledger: {total} rows appended in {time.perf_counter() - started:.1f} s")
    picked = range(0, total, stride)
    folder = work / "release"
    folder.mkdir()
    dataset = folder / "data.jsonl"
    dataset.write_text("".join(json.dumps({"prompt": record(i)["prompt"], "response": record(i)["response"]}) + "\n"
                               for i in picked), encoding="utf-8")
    report = run_match(dataset, ledger.path)
    started = time.perf_counter()
    with_proofs = write_provenance(report, ledger.path, Declared(), folder, key_dir=work / "keys", screen=False)
    write_s = time.perf_counter() - started
    envelope = json.loads(with_proofs["dsse"].read_text())
    predicate = json.loads(base64.b64decode(envelope["payload"]))["predicate"]
    section = predicate.pop("inclusion")
    from app.core.provenance.write import signed_envelope

    bare = len(json.dumps(signed_envelope(predicate, report.dataset_name, report.dataset_sha256, work / "keys"),
                          indent=2)) + 1
    rows = section["rows"]
    raw = len(base64.b64decode(section["proof"]))
    print(f"{'run' if stride == 1 else f'sparse 1/{stride}'}: {rows} traced rows, statement written in {write_s:.1f} s")
    print(f"  proof, compressed binary: {raw / rows:.1f} bytes/row ({raw} bytes)")
    print(f"  proof as base64 in the predicate: {len(section['proof']) / rows:.1f} bytes/row")
    print(f"  statement file growth: {(with_proofs['dsse'].stat().st_size - bare) / rows:.1f} bytes/row "
          f"(the DSSE payload is base64 again)")
    other = work / "elsewhere"
    other.mkdir()
    statement = Path(shutil.copy(with_proofs["dsse"], other))
    data = Path(shutil.copy(dataset, other))
    times = []
    for _ in range(3):
        started = time.perf_counter()
        result = verify_statement(statement, data)
        times.append(time.perf_counter() - started)
        assert result.ok, result.reasons
    print(f"  verify without the ledger: best {min(times):.2f} s of 3 (target < 10 s)")
    ledger.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
