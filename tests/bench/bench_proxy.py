"""The proxy's cost, measured side by side in one run:

1. added latency: p50 of a small request through `stillroom proxy` minus p50 of the same request
   sent straight to the engine, interleaved; against a real llama_cpp.server (SmolLM2, max_tokens=1)
   and against an in-memory responder (the proxy's own overhead, without the engine's noise);
2. streaming tokens/s through the proxy / direct, against the real llama_cpp.server (temperature 0,
   the same prompt and seed, interleaved);
3. the proxy's ceiling: logged requests per second from concurrent keep-alive clients (in another
   process) against the in-memory responder (in a third), with every row in the ledger after.

    python tests/bench/bench_proxy.py [--requests 40] [--reps 3] [--tokens 64] [--seconds 5] [--clients 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.models.chat_model import chat_model_path  # noqa: E402
from app.core.proxy.server import ProxyServer  # noqa: E402
from app.core.store import Ledger  # noqa: E402
from tests.e2e.llama_upstream import llama_server  # noqa: E402
from tests.e2e.memory_responder import memory_responder  # noqa: E402

PROMPT = "Write a detailed travel guide to a small coastal town, with history, food and walks."


def split(url: str) -> tuple[str, int, str]:
    host_port, _, path = url.split("//", 1)[1].partition("/")
    host, port = host_port.rsplit(":", 1)
    return host, int(port), "/" + path


class Client:
    """A keep-alive HTTP client for one base URL (plain http.client: its own cost stays small)."""

    def __init__(self, base: str) -> None:
        self.host, self.port, self.root = split(base)
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def post(self, path: str, body: dict) -> http.client.HTTPResponse:
        self.conn.request("POST", self.root + path, json.dumps(body), {"Content-Type": "application/json"})
        return self.conn.getresponse()

    def close(self) -> None:
        self.conn.close()


def p50_latency(base: str, body: dict, count: int) -> float:
    client = Client(base)
    times = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            answer = client.post("/chat/completions", body)
            answer.read()
            times.append((time.perf_counter() - started) * 1000)
    finally:
        client.close()
    return statistics.median(times)


def stream_rate(base: str, body: dict) -> tuple[float, int]:
    """Chunks per second from the first to the last event, and the number of events."""
    client = Client(base)
    try:
        answer = client.post("/chat/completions", body | {"stream": True})
        first = last = None
        events = 0
        buffer = b""
        while block := answer.read1(65536):
            now = time.perf_counter()
            buffer += block
            found = buffer.count(b"\n\n")
            if found:
                events += found
                buffer = buffer[buffer.rfind(b"\n\n") + 2:]
                first = first or now
                last = now
    finally:
        client.close()
    return (events - 1) / (last - first) if first and last and last > first else 0.0, events


def interleaved(direct: str, proxied: str, body: dict, count: int, rounds: int = 4) -> tuple[float, float]:
    """p50 direct and through the proxy, in alternating rounds (so drift hits both alike)."""
    direct_p50, proxy_p50 = [], []
    for _ in range(rounds):
        direct_p50.append(p50_latency(direct, body, count // rounds))
        proxy_p50.append(p50_latency(proxied, body, count // rounds))
    return statistics.median(direct_p50), statistics.median(proxy_p50)


def _load(base: str, seconds: float, clients: int, out: multiprocessing.Queue) -> None:
    """Runs in its own process: `clients` threads posting as fast as answers come, for `seconds`."""
    body = {"model": "memory-model", "messages": [{"role": "user", "content": "hello"}]}
    counts = [0] * clients
    errors = [0] * clients
    stop = time.perf_counter() + seconds

    def run(index: int) -> None:
        client = Client(base)
        while time.perf_counter() < stop:
            answer = client.post("/chat/completions", body)
            answer.read()
            if answer.status == 200:
                counts[index] += 1
            else:
                errors[index] += 1
        client.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((sum(counts), sum(errors)))


def _responder(ready: multiprocessing.Queue, stop: multiprocessing.Event) -> None:
    with memory_responder() as (url, _):
        ready.put(url)
        stop.wait()


def ceiling(folder: Path, seconds: float, clients: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    responder = ctx.Process(target=_responder, args=(ready, stop))
    responder.start()
    url = ready.get(timeout=30)
    ledger_file = folder / "ceiling.db"
    Ledger.open(ledger_file).close()
    server = ProxyServer(ledger_file, [url], port=0)
    server.start()
    out = ctx.Queue()
    load = ctx.Process(target=_load, args=(server.url, seconds, clients, out))
    started = time.perf_counter()
    load.start()
    done, errors = out.get(timeout=seconds + 60)
    load.join()
    elapsed = time.perf_counter() - started
    writer = server.writer
    server.stop()
    stop.set()
    responder.join()
    ledger = Ledger.open(ledger_file)
    rows = ledger.head()[2]
    intact = ledger.verify().ok
    ledger.close()
    assert writer is not None
    print(f"ceiling: {done} answered ({errors} errors) in {elapsed:.1f} s by {clients} clients = "
          f"{done / elapsed:.0f} logged requests/s; ledger rows {rows}, chain intact {intact}, "
          f"{writer.batches} commits ({writer.rows / max(writer.batches, 1):.1f} rows per commit)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="stillroom-bench-proxy-"))
    model = str(chat_model_path())
    small = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1, "temperature": 0}
    memory_body = {"model": "memory-model", "messages": [{"role": "user", "content": "Hi"}]}

    with memory_responder() as (memory_url, _):
        ledger_file = folder / "memory.db"
        Ledger.open(ledger_file).close()
        server = ProxyServer(ledger_file, [memory_url], port=0)
        server.start()
        try:
            direct, through = interleaved(memory_url, server.url, memory_body, args.requests * 5)
        finally:
            server.stop()
        print(f"latency, in-memory responder: direct p50 {direct:.2f} ms, proxied p50 {through:.2f} ms, "
              f"added {through - direct:.2f} ms")

    with llama_server(folder, embeddings=False, threads=2) as (url, _process):
        ledger_file = folder / "llama.db"
        Ledger.open(ledger_file).close()
        server = ProxyServer(ledger_file, [url], port=0)
        server.start()
        try:
            p50_latency(url, small, 3)  # warm up
            direct, through = interleaved(url, server.url, small, args.requests)
            print(f"latency, llama_cpp.server (max_tokens=1): direct p50 {direct:.2f} ms, proxied p50 "
                  f"{through:.2f} ms, added {through - direct:.2f} ms")
            streamed = {"model": model, "messages": [{"role": "user", "content": PROMPT}],
                        "max_tokens": args.tokens, "temperature": 0, "seed": 7}
            rates: dict[str, list[float]] = {"direct": [], "proxy": []}
            for _ in range(args.reps):
                for name, base in (("direct", url), ("proxy", server.url)):
                    rate, events = stream_rate(base, streamed)
                    rates[name].append(rate)
            direct_rate, proxy_rate = (statistics.median(rates[k]) for k in ("direct", "proxy"))
            print(f"streaming ({events} events): direct {direct_rate:.1f} chunks/s, proxied {proxy_rate:.1f} "
                  f"chunks/s, ratio {proxy_rate / direct_rate:.3f}")
        finally:
            server.stop()

    ceiling(folder, args.seconds, args.clients)


if __name__ == "__main__":
    main()
