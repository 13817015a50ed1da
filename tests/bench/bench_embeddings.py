"""Embedding throughput: Stillroom's encoder (the back end auto chooses on this machine: PyTorch in
bfloat16 on a CPU with hardware bfloat16, else ONNX Runtime over the local int8 export) against bare
sentence-transformers on PyTorch (CPU) on the same texts, in the same run, in interleaved rounds so
that every side sees the same machine load; the int8 and float32 exports beside them; the cosine of
each one's vectors to PyTorch's on the public eval prompts; and the cached embedder (embed_missing,
writing vectors to SQLite) with everything embedded already.

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

from app.core.audit.embed_backends import onnx_backend, model_dir  # noqa: E402
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
    # the int8 export (the fast path of CPUs without hardware bfloat16) and the float32 export (the
    # file a GPU runs, and the server's exact encoder), both on ONNX Runtime on this CPU
    others = {"int8": onnx_backend(model_dir(), home / "embeddings"),
              "f32": onnx_backend(model_dir(), home / "embeddings", exact=True)}
    bare.encode(texts[:64], batch_size=ENCODE_BATCH, normalize_embeddings=True)  # warm-up
    fast.encode(texts[:64])
    for backend in others.values():
        backend.encode(texts[:64], ENCODE_BATCH)
    times: dict[str, list[float]] = {"bare": [], "fast": [], **{key: [] for key in others}}
    vectors: dict[str, np.ndarray] = {}
    for round_no in range(args.rounds):
        start = time.perf_counter()
        reference = bare.encode(texts, batch_size=ENCODE_BATCH, normalize_embeddings=True, convert_to_numpy=True,
                                show_progress_bar=False)
        times["bare"].append(time.perf_counter() - start)
        start = time.perf_counter()
        vectors["fast"] = fast.encode(texts)
        times["fast"].append(time.perf_counter() - start)
        for key, backend in others.items():
            start = time.perf_counter()
            vectors[key] = backend.encode(texts, ENCODE_BATCH)
            times[key].append(time.perf_counter() - start)
        print(f"round {round_no + 1}: bare {len(texts) / times['bare'][-1]:.0f} texts/s, "
              f"{fast.backend} {len(texts) / times['fast'][-1]:.0f} texts/s, "
              + ", ".join(f"{others[key].name} {len(texts) / times[key][-1]:.0f} texts/s" for key in others)
              + f", load average {os.getloadavg()[0]:.1f}")
    rate = {key: len(texts) / statistics.median(spent) for key, spent in times.items()}
    cosine = {key: (np.asarray(v) * np.asarray(reference)).sum(axis=1) for key, v in vectors.items()}
    print(f"{len(texts)} {what}, median of {args.rounds} interleaved rounds, load average "
          f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"bare sentence-transformers (PyTorch, CPU): {rate['bare']:.1f} texts/s")
    print(f"stillroom encoder ({fast.backend}, model file sha256 {(fast.model_file_sha256 or '-')[:12]}, "
          f"loaded in {load_s:.1f} s): {rate['fast']:.1f} texts/s")
    print(f"ratio {rate['fast'] / rate['bare']:.2f} (target >= {TARGET_RATIO}); cosine to PyTorch min "
          f"{cosine['fast'].min():.5f} mean {cosine['fast'].mean():.5f} (target min >= {TARGET_COSINE})")
    for key, backend in others.items():
        print(f"{backend.name}: {rate[key]:.1f} texts/s, ratio {rate[key] / rate['bare']:.2f}; cosine to PyTorch "
              f"min {cosine[key].min():.5f} mean {cosine[key].mean():.5f}")
    db = open_db(home / "ledger.db")
    for _ in embed_missing(db, fast, texts):
        pass
    start = time.perf_counter()
    for _ in embed_missing(db, fast, texts):
        pass
    print(f"re-run of the cached embedder with everything embedded: {(time.perf_counter() - start) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
