"""Embedding throughput: Stillroom's cached embedder (embed_missing, writing vectors to SQLite)
against bare sentence-transformers `encode` on the same texts, in the same run.

    python tests/bench/bench_embeddings.py [--texts 2000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.audit.embeddings import Encoder, embed_missing  # noqa: E402
from app.core.store import open_db  # noqa: E402

SUBJECTS = ["rivers", "tax law", "sourdough", "binary search", "the French revolution", "tennis", "lichens"]
FORMS = ["Explain {s} to a beginner.", "Write a short poem about {s}.", "What are three facts about {s}?",
         "Summarize the history of {s} in two sentences.", "Give me a quiz question on {s}."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=2000)
    args = parser.parse_args()
    texts = [f"{FORMS[i % len(FORMS)].format(s=SUBJECTS[i % len(SUBJECTS)])} (variant {i})" for i in range(args.texts)]
    encoder = Encoder()
    model = encoder.model()
    model.encode(texts[:64], batch_size=encoder.batch_size, normalize_embeddings=True)  # warm-up
    start = time.perf_counter()
    model.encode(texts, batch_size=encoder.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                 show_progress_bar=False)
    bare = len(texts) / (time.perf_counter() - start)
    db = open_db(Path(tempfile.mkdtemp(prefix="stillroom-bench-emb-")) / "ledger.db")
    start = time.perf_counter()
    for _ in embed_missing(db, encoder, texts):
        pass
    ours = len(texts) / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in embed_missing(db, encoder, texts):
        pass
    cached = time.perf_counter() - start
    print(f"{len(texts)} texts: bare encode {bare:.0f} texts/s, stillroom embed+store {ours:.0f} texts/s, "
          f"ratio {ours / bare:.3f} (target >= 0.95); re-run with everything cached: {cached * 1000:.0f} ms")


if __name__ == "__main__":
    main()
