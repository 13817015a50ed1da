"""Tokens/s through the local server (streamed, real `openai` client) and through a batch run, each
against bare llama-cpp-python doing the same work in the same run (same model, prompts, parameters,
seeds). Reports medians and ratios ours / bare.

    python tests/bench/bench_server_batch.py [--tokens 96] [--reps 3] [--items 8]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.batch.jobs import create_job  # noqa: E402
from app.core.batch.run import run_batch  # noqa: E402
from app.core.batch.spec import build_spec  # noqa: E402
from app.core.models.resolve import resolve_model  # noqa: E402
from app.core.models.runner import LoadOptions, Runner  # noqa: E402
from app.core.store import Ledger  # noqa: E402

N_CTX = 2048
PROMPT = "Write a detailed travel guide to a small coastal town, with history, food and walks."
PARAMS = {"temperature": 0.8, "top_p": 0.95, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.0}
OPENAI_PARAMS = {"temperature": 0.8, "top_p": 0.95}
EXTRA_BODY = {"top_k": 40, "min_p": 0.05, "repeat_penalty": 1.0}  # llama.cpp's, outside OpenAI's schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="stillroom-bench-"))
    os.environ["STILLROOM_HOME"] = str(home)
    ledger = Ledger.open(home / "ledger.db")
    record = resolve_model(ledger.db, None)

    import openai
    from llama_cpp import Llama

    bare = Llama(model_path=record.info.path, n_ctx=N_CTX, n_threads=args.threads, verbose=False)

    def bare_stream(prompt: str, seed: int) -> tuple[int, float]:
        start = time.perf_counter()
        tokens = 0
        for _ in bare.create_completion(prompt, max_tokens=args.tokens, seed=seed, stream=True, **PARAMS):
            tokens += 1
        return tokens - 1, time.perf_counter() - start  # the last chunk carries only the finish reason

    # --- server, streamed: `stillroom serve` in its own process, as a user runs it -------------
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port), "--n-ctx", str(N_CTX),
                               "--threads", str(args.threads)], cwd=Path(__file__).resolve().parents[2],
                              stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    while "serving" not in server.stderr.readline():
        assert server.poll() is None, "the server did not start"
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="bench", max_retries=0)

    def served(seed: int) -> tuple[int, float]:
        start = time.perf_counter()
        usage = None
        stream = client.completions.create(model="default", prompt=PROMPT, max_tokens=args.tokens, seed=seed,
                                           stream=True, stream_options={"include_usage": True},
                                           extra_body=EXTRA_BODY, **OPENAI_PARAMS)
        for chunk in stream:
            usage = chunk.usage or usage
        assert usage is not None
        return usage.completion_tokens, time.perf_counter() - start

    bare_stream(PROMPT, 1), served(1)
    bare_rates, server_rates = [], []
    for rep in range(args.reps):
        tokens, seconds = bare_stream(PROMPT, 10 + rep)
        bare_rates.append(tokens / seconds)
        tokens, seconds = served(10 + rep)
        server_rates.append(tokens / seconds)
    server.terminate()
    server.wait(timeout=60)
    print(f"server, streamed: bare {statistics.median(bare_rates):.1f} tok/s, "
          f"stillroom {statistics.median(server_rates):.1f} tok/s, ratio "
          f"{statistics.median(server_rates) / statistics.median(bare_rates):.3f} (target >= 0.95)")

    # --- batch ------------------------------------------------------------------------------
    runner = Runner()
    runner.load(record.sha256, record.info, LoadOptions(n_ctx=N_CTX, n_threads=args.threads))
    items = [f"a town number {i}" for i in range(args.items)]
    template = "Write a detailed travel guide to {input}, with history, food and walks."
    batch_params = PARAMS | {"max_tokens": args.tokens, "seed": 500}
    bare_batch, our_batch = [], []
    for rep in range(args.reps):
        start, tokens = time.perf_counter(), 0
        for index, item in enumerate(items):
            out = bare.create_completion(template.format(input=item), max_tokens=args.tokens, seed=500 + index,
                                         **PARAMS)
            tokens += out["usage"]["completion_tokens"]
        bare_batch.append(tokens / (time.perf_counter() - start))
        spec = build_spec({"name": f"bench-{rep}", "template": template, "inputs": items,
                           "output": str(home / f"batch-{rep}.jsonl"), "params": batch_params}, home)
        job = create_job(ledger.db, spec)
        start = time.perf_counter()
        for _ in run_batch(ledger, runner, job.id):
            pass
        seconds = time.perf_counter() - start
        tokens = ledger.db.execute("SELECT sum(completion_tokens) FROM generations "
                                   "WHERE json_extract(meta, '$.batch.job') = ?", [job.id]).fetchone()[0]
        our_batch.append(tokens / seconds)
    print(f"batch of {args.items}: bare {statistics.median(bare_batch):.1f} tok/s, "
          f"stillroom {statistics.median(our_batch):.1f} tok/s, ratio "
          f"{statistics.median(our_batch) / statistics.median(bare_batch):.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
