"""Embedding throughput: Stillroom's encoder (its fast back end: ONNX Runtime over the local int8 export)
against bare sentence-transformers on PyTorch (CPU) on the same texts, in the same run, in
interleaved rounds so that both sides see the same machine load; the cosine of the fast vectors to
PyTorch's on the public eval prompts; and the cached embedder (embed_missing, writing vectors to
SQLite) with everything embedded already.

    python tests/bench/bench_embeddings.py [--rounds 3] [--texts 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.audit.embed_backends import OnnxBackend, model_dir  # noqa: E402
from app.core.audit.embed_export import FLOAT32  # noqa: E402
from app.core.audit.embeddings import ENCODE_BATCH, Encoder, embed_missing  # noqa: E402
from app.core.store import open_db  # noqa: E402
from tests.bench.eval_sets import ROOT, load_sets  # noqa: E402

SUBJECTS = ["rivers", "tax law", "sourdough", "binary search", "the French revolution", "tennis", "lichens"]
FORMS = ["Explain {s} to a beginner.", "Write a short poem about {s}.", "What are three facts about {s}?",
         "Summarize the history of {s} in two sentences.", "Give me a quiz question on {s}."]
TARGET_RATIO = 2.5
TARGET_COSINE = 0.99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--texts", type=int, default=2000, help="synthetic prompts when the eval sets are absent")
    args = parser.parse_args()
    if ROOT.exists():
        texts, what = [p for _, (_, prompts) in load_sets().items() for p in prompts], "public eval prompts"
    else:
        texts = [f"{FORMS[i % len(FORMS)].format(s=SUBJECTS[i % len(SUBJECTS)])} (variant {i})"
                 for i in range(args.texts)]
        what = "synthetic prompts"
    home = Path(tempfile.mkdtemp(prefix="stillroom-bench-emb-"))
    fast = Encoder(export_dir=home / "embeddings")
    start = time.perf_counter()
    fast.model()
    load_s = time.perf_counter() - start
    bare = Encoder(backend="pytorch").model().model  # the SentenceTransformer itself
    # the float32 export on ONNX Runtime: the file a GPU runs, here on the CPU
    [export] = (home / "embeddings").glob(f"*-{FLOAT32}.onnx")
    f32 = OnnxBackend(model_dir(), export, "", precision=FLOAT32)
    bare.encode(texts[:64], batch_size=ENCODE_BATCH, normalize_embeddings=True)  # warm-up
    fast.encode(texts[:64])
    f32.encode(texts[:64], ENCODE_BATCH)
    times: dict[str, list[float]] = {"bare": [], "fast": [], "f32": []}
    for round_no in range(args.rounds):
        start = time.perf_counter()
        reference = bare.encode(texts, batch_size=ENCODE_BATCH, normalize_embeddings=True, convert_to_numpy=True,
                                show_progress_bar=False)
        times["bare"].append(time.perf_counter() - start)
        start = time.perf_counter()
        vectors = fast.encode(texts)
        times["fast"].append(time.perf_counter() - start)
        start = time.perf_counter()
        f32.encode(texts, ENCODE_BATCH)
        times["f32"].append(time.perf_counter() - start)
        print(f"round {round_no + 1}: bare {len(texts) / times['bare'][-1]:.0f} texts/s, "
              f"{fast.backend} {len(texts) / times['fast'][-1]:.0f} texts/s, {f32.name} "
              f"{len(texts) / times['f32'][-1]:.0f} texts/s, load average {os.getloadavg()[0]:.1f}")
    cosine = (np.asarray(vectors) * np.asarray(reference)).sum(axis=1)
    bare_rate = len(texts) / statistics.median(times["bare"])
    fast_rate = len(texts) / statistics.median(times["fast"])
    print(f"{len(texts)} {what}, median of {args.rounds} interleaved rounds, load average "
          f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"bare sentence-transformers (PyTorch, CPU): {bare_rate:.1f} texts/s")
    print(f"stillroom encoder ({fast.backend}, model file sha256 {(fast.model_file_sha256 or '-')[:12]}, "
          f"loaded in {load_s:.1f} s): {fast_rate:.1f} texts/s")
    print(f"ratio {fast_rate / bare_rate:.2f} (target >= {TARGET_RATIO}); cosine to PyTorch min {cosine.min():.5f} "
          f"mean {cosine.mean():.5f} (target min >= {TARGET_COSINE})")
    f32_rate = len(texts) / statistics.median(times["f32"])
    print(f"the float32 export ({f32.name}): {f32_rate:.1f} texts/s, "
          f"ratio {f32_rate / bare_rate:.2f}")
    db = open_db(home / "ledger.db")
    for _ in embed_missing(db, fast, texts):
        pass
    start = time.perf_counter()
    for _ in embed_missing(db, fast, texts):
        pass
    print(f"re-run of the cached embedder with everything embedded: {(time.perf_counter() - start) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
