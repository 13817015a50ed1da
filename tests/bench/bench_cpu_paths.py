"""Tokens/s of each way of running llama.cpp on the CPU, side by side in one run.

Each llama.cpp build (a llama-cpp-python wheel: `make llama-wheel` native without AMX, portable AVX2)
is unpacked into its own folder and run in a child process over the same GGUF file, prompt, greedy
sampling and seed, with llama.cpp's extra buffer types on (llama-cpp-python's default: weight
repacking, and AMX where the build has it) and off (what Stillroom chooses where AMX is at risk).
Rounds are interleaved (every configuration once per round), so all see the same machine state;
medians of the rounds are reported with the ratio against the first configuration (the installed
llama-cpp-python with its defaults: "bare"). A child that crashes is reported with its signal.

    python tests/bench/bench_cpu_paths.py [--tokens 96] [--rounds 3] [--wheel NAME=PATH ...]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

PROMPT = "Write a long story about a lighthouse keeper who discovers a message in a bottle."
N_CTX = 1024

CHILD = r"""
import json, sys, time
import llama_cpp.llama_cpp as lib
from llama_cpp import Llama
model, extra, tokens, threads = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4])
original = lib.llama_model_default_params
def params():
    p = original()
    p.use_extra_bufts = extra
    return p
if sys.argv[2] != "default":
    lib.llama_model_default_params = params
llm = Llama(model_path=model, n_ctx=1024, n_threads=threads, seed=1234, verbose=False)
info = lib.llama_print_system_info().decode()
llm.create_completion("Hello", max_tokens=4, temperature=0.0, seed=1234)  # warm-up
start = time.perf_counter(); first = None; n = 0
for chunk in llm.create_completion(sys.argv[5], max_tokens=tokens, temperature=0.0, seed=1234, stream=True):
    n += 1
    if first is None:
        first = time.perf_counter()
end = time.perf_counter()
print(json.dumps({"tok_s": (n - 1) / (end - first) if n > 1 else 0.0, "tokens": n, "system_info": info}))
"""


def unpack(wheel: Path, into: Path) -> Path:
    """The wheel's llama_cpp package in its own folder, importable with PYTHONPATH."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(into, [n for n in archive.namelist() if n.startswith("llama_cpp/")])
    return into


def wheel_in(folder: str) -> Path:
    wheels = sorted(Path(folder).glob("llama_cpp_python-*.whl"))
    if not wheels:
        raise SystemExit(f"no llama-cpp-python wheel in {folder}: build it with make llama-wheel")
    return wheels[-1]


def make_wheel_dir(build: str) -> str:
    return subprocess.run(["make", "-s", "--no-print-directory", "llama-wheel-dir", f"LLAMA_BUILD={build}"],
                          cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()


def run_child(pythonpath: str | None, model: str, extra: str, tokens: int, threads: int) -> dict:
    env = os.environ.copy()
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run([sys.executable, "-c", CHILD, model, extra, str(tokens), str(threads), PROMPT],
                          capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        name = signal.Signals(-done.returncode).name if done.returncode < 0 else f"exit {done.returncode}"
        return {"crash": name, "stderr": done.stderr[-400:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--wheel", action="append", default=[], metavar="NAME=PATH",
                        help="a llama-cpp-python wheel (or folder of one) to compare; default: make's native and portable")
    args = parser.parse_args()
    from app.core.models.default_model import default_model_path
    from app.core.store import Ledger

    home = Path(tempfile.mkdtemp(prefix="stillroom-bench-"))
    os.environ["STILLROOM_HOME"] = str(home)
    ledger = Ledger.open(home / "ledger.db")
    model = str(default_model_path(ledger.db))
    ledger.close()
    wheels = dict(item.split("=", 1) for item in args.wheel) or {
        "native, AMX off (make setup)": make_wheel_dir("native"), "portable AVX2 (make package)": make_wheel_dir("portable")}
    configs: list[tuple[str, str | None, str]] = [("bare: installed llama-cpp-python, defaults", None, "default")]
    scratch = Path(tempfile.mkdtemp(prefix="stillroom-wheels-"))
    for index, (name, where) in enumerate(wheels.items()):
        wheel = Path(where) if where.endswith(".whl") else wheel_in(where)
        path = str(unpack(wheel, scratch / str(index)))
        configs += [(f"{name}, extra buffers on", path, "1"), (f"{name}, extra buffers off", path, "0")]
    results: dict[str, list[float]] = {name: [] for name, _, _ in configs}
    infos: dict[str, str] = {}
    for round_no in range(args.rounds):
        for name, path, extra in configs:
            out = run_child(path, model, extra, args.tokens, args.threads)
            if "crash" in out:
                print(f"  round {round_no + 1}: {name}: CRASHED ({out['crash']})", flush=True)
                continue
            results[name].append(out["tok_s"])
            infos[name] = " ".join(out["system_info"].split())
            print(f"  round {round_no + 1}: {name}: {out['tok_s']:.1f} tok/s", flush=True)
    base = statistics.median(results[configs[0][0]]) if results[configs[0][0]] else None
    print(f"\nGemma 3 270M Q4_K_M, {args.tokens} tokens greedy, seed 1234, {args.threads} threads, "
          f"median of {args.rounds} interleaved rounds")
    for name, _, _ in configs:
        values = results[name]
        if not values:
            print(f"  {name}: crashed every time")
            continue
        median = statistics.median(values)
        ratio = f"{median / base:.2f}" if base else "n/a"
        print(f"  {name}: {median:.1f} tok/s, ratio {ratio}")
    print("\nllama.cpp system info per configuration:")
    for name, info in infos.items():
        print(f"  {name}: {info}")


if __name__ == "__main__":
    main()
