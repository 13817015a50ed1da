"""Audit throughput: scoring 100,000 already-embedded generations, then re-auditing the unchanged
ledger (which must embed and score nothing, and reads back each workflow's stored audit), and a re-audit
that judges every workflow again. Then, side by side in this run, that re-judgement with and
without the second-generation stages of aggregation (template induction, sub-streams), alternated
--repeats times; the ratio of their medians is what they add.

The generations' vectors are written straight into the embedding cache (random unit vectors keyed
by each prompt's hash), so the run times the scoring and aggregation, not the embedding model.

    python tests/bench/bench_audit.py [--rows 100000] [--workflows 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.audit.embeddings import DIM, Encoder, text_key  # noqa: E402
from app.core.audit.patterns import load_library  # noqa: E402
from app.core.audit import workflow_state as stage_module  # noqa: E402
from app.core.audit.run import run_audit  # noqa: E402
from app.core.audit.templates import GridEvidence  # noqa: E402
from app.core.progress import drive  # noqa: E402
from app.core.store import Ledger  # noqa: E402
from app.core.store.ledger import utc_now  # noqa: E402
from tests.core.records import record  # noqa: E402

VERBS = ["Explain", "Summarize", "Rate", "Translate", "List", "Describe", "Compare", "Rewrite"]
TOPICS = ["tides", "tax law", "sourdough", "binary search", "the Hanseatic League", "tennis", "lichens", "jazz"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workflows", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ledger = Ledger.open(Path(tempfile.mkdtemp(prefix="stillroom-bench-audit-")) / "ledger.db")
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for first in range(0, args.rows, 5000):
        batch = []
        for i in range(first, min(args.rows, first + 5000)):
            prompt = f"{VERBS[i % 8]} {TOPICS[(i // 8) % 8]} for reader {i}, in {(i % 5) + 2} sentences."
            batch.append(record(i, prompt=prompt, workflow=f"workflow-{i % args.workflows}",
                                logprobs_requested=int(i % 7 == 0)))
        ledger.append_many(batch)
        vectors = rng.normal(size=(len(batch), DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        now = utc_now()
        with ledger.db.conn:
            ledger.db.conn.executemany(
                "INSERT OR REPLACE INTO embeddings (text_sha256, model, dim, vector, created_at) VALUES (?, ?, ?, ?, ?)",
                [(text_key(r["prompt"]), Encoder.name, DIM, v.tobytes(), now) for r, v in zip(batch, vectors)])
    print(f"seeded {args.rows} generations in {args.workflows} workflows ({time.perf_counter() - start:.1f} s)")
    library, encoder = load_library(), Encoder()
    # Fit the scorer once (embeds the library's exemplars: a one-time cost, cached in the ledger).
    for _ in run_audit(ledger.db, encoder, library, workflows=["none-such"]):
        pass
    for label in ("first audit (score everything)", "re-audit (unchanged ledger)",
                  "re-audit judging every workflow again (stored workflow audits cleared)"):
        if "cleared" in label:
            ledger.db.execute("DELETE FROM audit_aggregates")
        start = time.perf_counter()
        result = drive(run_audit(ledger.db, encoder, library))
        assert result is not None
        print(f"{label}: {time.perf_counter() - start:.1f} s, newly scored {result.newly_scored}, "
              f"{len(result.workflows)} workflows")
    print("targets: scoring 100,000 embedded generations < 60 s; re-audit of an unchanged ledger < 5 s")
    timings: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(args.repeats):
        for label in ("without", "with"):
            stages = (stage_module.judge_substreams, stage_module.induce_grid)
            if label == "without":
                stage_module.judge_substreams = lambda *_a, **_k: []
                stage_module.induce_grid = lambda prompts: GridEvidence(sampled=len(prompts))
            ledger.db.execute("DELETE FROM audit_aggregates")  # judge every workflow, not read it back
            try:
                start = time.perf_counter()
                drive(run_audit(ledger.db, encoder, library))
                timings[label].append(time.perf_counter() - start)
            finally:
                stage_module.judge_substreams, stage_module.induce_grid = stages
    with_s, without_s = (float(np.median(timings[k])) for k in ("with", "without"))
    print(f"re-judgement with template induction and sub-streams {with_s:.2f} s, without {without_s:.2f} s "
          f"(medians of {args.repeats}, alternated): ratio {with_s / without_s:.2f}")


if __name__ == "__main__":
    main()
