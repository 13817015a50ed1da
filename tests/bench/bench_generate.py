"""Tokens/s of Stillroom's generation path (runner + ledger) against bare llama-cpp-python.

Same model file, prompt, sampling parameters and seed; runs interleaved (bare, ours, bare, ours ...)
in one process so both see the same machine state; reports medians and the ratio ours / bare.

    python tests/bench/bench_generate.py [--tokens 128] [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.generation import LogContext, LoggedGeneration, generate_logged  # noqa: E402
from app.core.models.resolve import resolve_model  # noqa: E402
from app.core.models.runner import LoadOptions, Runner  # noqa: E402
from app.core.models.sampling import GenerationRequest, SamplingParams  # noqa: E402
from app.core.store import Ledger  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper who discovers a message in a bottle."
N_CTX = 2048


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="stillroom-bench-"))
    os.environ["STILLROOM_HOME"] = str(home)
    ledger = Ledger.open(home / "ledger.db")
    record = resolve_model(ledger.db, None)

    from llama_cpp import Llama

    bare = Llama(model_path=record.info.path, n_ctx=N_CTX, n_threads=args.threads, verbose=False)
    runner = Runner()
    runner.load(record.sha256, record.info, LoadOptions(n_ctx=N_CTX, n_threads=args.threads))
    params = SamplingParams(max_tokens=args.tokens, temperature=0.8, top_p=0.95, top_k=40, min_p=0.05,
                            repeat_penalty=1.1, seed=1234)
    sink = open(os.devnull, "w")  # noqa: SIM115 - the CLI writes every chunk to stdout; so do we

    def run_bare() -> tuple[int, float]:
        start = time.perf_counter()
        out = bare.create_completion(PROMPT, max_tokens=params.max_tokens, temperature=params.temperature,
                                     top_p=params.top_p, top_k=params.top_k, min_p=params.min_p,
                                     repeat_penalty=params.repeat_penalty, seed=params.seed)
        return out["usage"]["completion_tokens"], time.perf_counter() - start

    def run_ours() -> tuple[int, float]:
        start = time.perf_counter()
        request = GenerationRequest("completion", prompt=PROMPT, params=params)
        tokens = 0
        for item in generate_logged(runner, ledger, request, LogContext("cli", workflow="bench")):
            if isinstance(item, LoggedGeneration):
                tokens = item.result.completion_tokens
            else:
                sink.write(item.text)
                sink.flush()
        return tokens, time.perf_counter() - start

    run_bare(), run_ours()  # warm-up
    bare_rates, our_rates = [], []
    for _ in range(args.reps):
        tokens, seconds = run_bare()
        bare_rates.append(tokens / seconds)
        our_tokens, our_seconds = run_ours()
        our_rates.append(our_tokens / our_seconds)
        assert our_tokens == tokens, f"token counts differ: {our_tokens} vs {tokens}"
    bare_tps, our_tps = statistics.median(bare_rates), statistics.median(our_rates)
    print(f"model: {record.info.name} ({record.info.quantization}), {args.tokens} tokens, "
          f"{args.threads} threads, {args.reps} interleaved runs")
    print(f"bare llama-cpp-python create_completion: {bare_tps:6.1f} tokens/s (median)")
    print(f"stillroom runner + ledger (streamed):     {our_tps:6.1f} tokens/s (median)")
    print(f"ratio ours/bare: {our_tps / bare_tps:.3f} (target >= 0.97)")
    print(f"ledger rows written: {ledger.head()[2]}, chain intact: {ledger.verify().ok}")


if __name__ == "__main__":
    main()
