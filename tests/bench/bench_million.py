"""The ledger and the audit at a million generations: a seeded ledger built once and kept (by row
count) in the bench's own temp folder, then, in one run: chain verification, the first full audit,
the re-audit of the unchanged ledger (stored per-workflow audits read back) beside a re-audit that
judges every workflow from all its rows, the map, and refreshes after 1 (five times), 10 and 100
new generations (what the Audit view does after a chat turn or batch items: the new rows folded into
the workflow's running aggregates), each compared with a whole re-judgement and map; then a whole
audit judged from scratch, compared with the refreshed one; and the encoder's throughput on a
sample of the prompts, from which the embedding part of a first audit is extrapolated. With
--views, the Ledger view (open, scroll to the end, search) and the app's launch are then measured
on a copy of the same ledger (bench_gui_ledger.py, bench_gui_launch.py); with --audit-view, the Audit
view is opened on this run's audited ledger and refreshed after new generations, the UI thread timed
(bench_gui_audit_refresh.py).

The prompts' vectors are written straight into the embedding cache (random unit vectors keyed by
each prompt's hash, as bench_audit.py does), so "first full audit" times scoring and aggregation,
not the embedding model; the embedding part of a first audit at this size is rows / the encoder's
throughput, printed as an extrapolation.

    python tests/bench/bench_million.py [--rows 1000000] [--workflows 50] [--skip-audit] [--views]
                                        [--with-embedding] [--sample 20000] [--audit-view]

--with-embedding drops the seeded vectors so that the first full audit embeds every prompt itself
(with the encoder auto chooses), the figure the issue's 30-minute target is about.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.audit.embeddings import DIM, Encoder, embed_missing, text_key  # noqa: E402
from app.core.audit.map_data import build_map  # noqa: E402
from app.core.audit.patterns import load_library  # noqa: E402
from app.core.audit.projection import ProjectionStore  # noqa: E402
from app.core.audit.refresh import refresh_audit  # noqa: E402
from app.core.audit.run import run_audit  # noqa: E402
from app.core.progress import drive  # noqa: E402
from app.core.store import Ledger  # noqa: E402
from app.core.store.ledger import utc_now  # noqa: E402
from tests.bench.bench_audit import TOPICS, VERBS  # noqa: E402
from tests.core.records import record  # noqa: E402

SEED_BATCH = 10_000
CACHE = Path(tempfile.gettempdir()) / "stillroom-bench-million"


def prompt_of(i: int) -> str:
    return f"{VERBS[i % 8]} {TOPICS[(i // 8) % 8]} for reader {i}, in {(i % 5) + 2} sentences."


def seeded_ledger(rows: int, workflows: int) -> Path:
    """The cached ledger of `rows` generations (built on first use; a partial build is discarded)."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"ledger-{rows}-{workflows}.db"
    if path.exists():
        return path
    partial = CACHE / f"building-{rows}-{workflows}.db"
    for leftover in CACHE.glob(partial.stem + ".*"):  # the file, its WAL and its heads record
        leftover.unlink()
    ledger = Ledger.open(partial)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for first in range(0, rows, SEED_BATCH):
        batch = [record(i, prompt=prompt_of(i), workflow=f"workflow-{i % workflows}",
                        logprobs_requested=int(i % 7 == 0)) for i in range(first, min(rows, first + SEED_BATCH))]
        ledger.append_many(batch)
        vectors = rng.normal(size=(len(batch), DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        now = utc_now()
        with ledger.db.conn:
            ledger.db.conn.executemany(
                "INSERT OR REPLACE INTO embeddings (text_sha256, model, dim, vector, created_at) VALUES (?, ?, ?, ?, ?)",
                [(text_key(r["prompt"]), Encoder.name, DIM, v.tobytes(), now) for r, v in zip(batch, vectors)])
        if first % 100_000 == 0:
            print(f"  seeding: {first + len(batch):,} rows, {time.perf_counter() - start:.0f} s", flush=True)
    ledger.close()
    os.replace(partial, path)
    print(f"seeded {rows:,} generations in {workflows} workflows in {time.perf_counter() - start:.0f} s "
          f"(kept at {path.name} for the next run)")
    return path


def timed(label: str, job):  # noqa: ANN001, ANN201
    start = time.perf_counter()
    result = job()
    elapsed = time.perf_counter() - start
    print(f"{label}: {elapsed:.2f} s", flush=True)
    return result, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workflows", type=int, default=50)
    parser.add_argument("--skip-audit", action="store_true", help="only seed and verify")
    parser.add_argument("--views", action="store_true", help="then the Ledger view and the launch on that ledger")
    parser.add_argument("--with-embedding", action="store_true",
                        help="the first full audit embeds every prompt itself (the seeded vectors are dropped first)")
    parser.add_argument("--sample", type=int, default=20_000, help="prompts for the encoder's throughput")
    parser.add_argument("--audit-view", action="store_true",
                        help="then the Audit view on this run's audited ledger, refreshed after chat turns")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="stillroom-bench-million-run-"))
    path = scratch / "ledger.db"
    seeded = seeded_ledger(args.rows, args.workflows)
    shutil.copyfile(seeded, path)  # this run's audit leaves the cache as it was
    ledger = Ledger.open(path)
    verified, _ = timed(f"chain verify, {args.rows:,} rows", ledger.verify)
    print(f"  chain intact: {verified.ok}, {verified.rows:,} rows")
    if args.skip_audit:
        return
    library, encoder = load_library(), Encoder()
    store = ProjectionStore(scratch)
    # the encoder's load and the library's exemplars: a one-time cost, not the ledger's
    timed("warm-up (encoder, exemplars, scorer)",
          lambda: drive(run_audit(ledger.db, encoder, library, workflows=["none-such"])))
    if args.with_embedding:
        with ledger.db.conn:
            ledger.db.execute("DELETE FROM embeddings")
        label = f"first full audit, embedding included ({encoder.backend}; target < 30 min)"
    else:
        label = "first full audit (scoring and aggregation; vectors pre-seeded)"
    result, _ = timed(label, lambda: drive(run_audit(ledger.db, encoder, library)))
    print(f"  newly scored {result.newly_scored:,}, {len(result.workflows)} workflows")
    map_data, _ = timed("map (PCA fit and placement of every point)",
                        lambda: drive(build_map(ledger.db, encoder, library, store, "pca", result)))
    again, whole_s = timed("re-audit of the unchanged ledger (target < 10 s; stored per-workflow audits read back)",
                           lambda: drive(run_audit(ledger.db, encoder, library)))
    assert again.newly_scored == 0
    with ledger.db.conn:
        ledger.db.execute("DELETE FROM audit_aggregates")
    rejudged, rejudge_s = timed("re-audit judging every workflow from all its rows (stored aggregates cleared)",
                                lambda: drive(run_audit(ledger.db, encoder, library)))
    assert [w.as_dict() for w in rejudged.workflows] == [w.as_dict() for w in again.workflows]
    _, map_s = timed("map of the unchanged ledger (what a whole re-audit also rebuilds)",
                     lambda: drive(build_map(ledger.db, encoder, library, store, "pca", again)))
    per_workflow = args.rows // args.workflows
    previous, previous_map, next_id = again, map_data, args.rows + 1
    for count in (1, 1, 1, 1, 1, 10, 100):
        prompts = [f"Explain tides to a child in {next_id + i} sentences." for i in range(count)]
        ledger.append_many([record(next_id + i, prompt=prompt, workflow="workflow-7")
                            for i, prompt in enumerate(prompts)])
        next_id += count
        # the new prompts' embedding (the encoder's work, proportional to them) timed on its own
        timed(f"  embedding the {count} new prompt(s) (part of the refresh below, done first here)",
              lambda: drive(embed_missing(ledger.db, encoder, prompts)))
        refreshed, refresh_s = timed(f"refresh after {count} new generation(s) in a workflow of about "
                                     f"{per_workflow:,} (audit and map; prompts embedded above)", lambda: drive(refresh_audit(
                                         ledger.db, encoder, library, store, previous, previous_map)))
        assert refreshed.new_rows == count
        assert len(refreshed.map.generation_ids) == len(previous_map.generation_ids) + count
        print(f"  {refresh_s * 1000:.1f} ms; ratio to a whole re-judgement and map ({rejudge_s + map_s:.2f} s): "
              f"{(rejudge_s + map_s) / refresh_s:.0f}x", flush=True)
        previous, previous_map = refreshed.result, refreshed.map
    with ledger.db.conn:
        ledger.db.execute("DELETE FROM audit_aggregates")
    judged, _ = timed("whole audit judged from scratch after the refreshes (to compare)",
                      lambda: drive(run_audit(ledger.db, encoder, library)))
    same = [w.as_dict() for w in judged.workflows] == [w.as_dict() for w in previous.workflows]
    print(f"  the refreshed audit equals the one judged from scratch: {same}")
    sample = [prompt_of(i) for i in range(0, args.rows, max(1, args.rows // args.sample))][:args.sample]
    encoder.encode(sample[:64])
    _, encode_s = timed(f"encoder throughput on {len(sample):,} of these prompts ({encoder.backend})",
                        lambda: encoder.encode(sample))
    rate = len(sample) / encode_s
    print(f"  {rate:,.0f} prompts/s; embedding {args.rows:,} prompts: about {args.rows / rate / 60:.0f} min "
          f"(EXTRAPOLATED as rows / throughput, not measured)")
    print(f"peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    ledger.close()
    if args.audit_view:  # the view reads this run's scores, aggregates and fitted projection back
        print("$ bench_gui_audit_refresh.py --refreshes 5 --ledger (this run's audited ledger)", flush=True)
        subprocess.run([sys.executable, str(Path(__file__).parent / "bench_gui_audit_refresh.py"), "--refreshes", "5",
                        "--ledger", str(path)], check=False)
    shutil.rmtree(scratch)
    if args.views:  # each in its own process, on a copy of the seeded ledger
        for bench in (["bench_gui_ledger.py", "--repeat", "3", "--search", "Hanseatic Compare", "--common", "tides"],
                      ["bench_gui_launch.py", "--runs", "3"]):
            print(f"$ {' '.join(bench)} --ledger {seeded.name}", flush=True)
            subprocess.run([sys.executable, str(Path(__file__).parent / bench[0]), *bench[1:], "--ledger", str(seeded)],
                           check=False)


if __name__ == "__main__":
    main()
