"""llama-cpp-python's own OpenAI-compatible server (`python -m llama_cpp.server`) in a subprocess on a
free loopback port, with the bundled SmolLM2 model: the real upstream for the proxy's tests and
benchmark. The chat model has no alias, so /v1/models reports its file's path (which the proxy can
hash); the same file is also served for embeddings under the alias `embed`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.core.models.chat_model import chat_model_path

EMBED_ALIAS = "embed"
START_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def llama_server(folder: Path, *, embeddings: bool = True, threads: int = 1) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start the server; yields (base URL …/v1, the process). Stopped (SIGTERM, then SIGKILL) at exit."""
    model = str(chat_model_path())
    port = free_port()
    models = [{"model": model, "chat_format": "chatml-function-calling", "n_ctx": 1024, "n_threads": threads,
               "n_threads_batch": threads, "verbose": False}]
    if embeddings:
        models.append({"model": model, "model_alias": EMBED_ALIAS, "embedding": True, "n_ctx": 512,
                       "n_threads": 1, "n_threads_batch": 1, "verbose": False})
    config = folder / f"llama-server-{port}.json"
    config.write_text(json.dumps({"host": "127.0.0.1", "port": port, "models": models}), encoding="utf-8")
    log = (folder / f"llama-server-{port}.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STILLROOM")} | {"HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--config_file", str(config)],
                               stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {(folder / f'llama-server-{port}.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
