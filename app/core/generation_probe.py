"""A real generation of a few tokens with the default model, in a child process (for `stillroom doctor`).

Qt-free. llama.cpp can crash the whole process (SIGSEGV in its AMX code, SIGILL when it was compiled
for another CPU), so the doctor never generates in its own process: `run_probe()` starts
`stillroom doctor --probe-generation` (see `probe_command()`) against a throwaway data folder and
reads how it ended: a JSON line on stdout, an exit status, or the signal that killed it.
`probe_generation()` is what that child runs. Nothing is logged to any ledger.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import app
from app.core.privacy import OFFLINE_ENV

PROBE_OPTION = "--probe-generation"
PROBE_PROMPT = "The sky is"
PROBE_TOKENS = 4
PROBE_N_CTX = 256
PROBE_SEED = 7
# One thread: the crashes this check is for do not depend on the thread count, and on a busy machine
# llama.cpp's spinning OpenMP threads made four tokens take 11-13 s with two threads against 2-5 s with one.
PROBE_THREADS = 1
PROBE_TIMEOUT_S = 180.0
STDERR_TAIL_CHARS = 600


@dataclass(frozen=True)
class ProbeOutcome:
    """How the child ended. returncode: its exit status (negative: killed by that signal);
    signal_name: e.g. "SIGSEGV" when a signal ended it; timed_out: killed after the timeout;
    result: the JSON the child printed on success (text, tokens, tokens_per_s, cpu path)."""

    command: list[str]
    returncode: int | None
    seconds: float
    timed_out: bool = False
    signal_name: str | None = None
    stderr_tail: str = ""
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and bool(self.result) and self.result.get("status") == "ok"


def probe_generation(model: Path | None, max_tokens: int = PROBE_TOKENS) -> dict[str, Any]:
    """Load `model` (default: the embedded default model, assembled into the data folder's models
    folder) the way the app does and generate `max_tokens` tokens. Runs in the child process; returns
    what it prints as JSON. Raises StillroomError when the model cannot be loaded."""
    from app.core.models import cpu_backend
    from app.core.models.gguf_info import read_gguf_info
    from app.core.models.runner import GenerationResult, LoadOptions, Runner
    from app.core.models.sampling import GenerationRequest, SamplingParams

    started = time.perf_counter()
    path = model if model is not None else _assemble_default()
    info = read_gguf_info(path)
    runner = Runner()
    runner.load("probe", info, LoadOptions(n_ctx=PROBE_N_CTX, n_threads=PROBE_THREADS, seed=PROBE_SEED))
    loaded_s = time.perf_counter() - started
    request = GenerationRequest("completion", prompt=PROBE_PROMPT,
                                params=SamplingParams(max_tokens=max_tokens, seed=PROBE_SEED, temperature=0.0))
    final: GenerationResult | None = None
    try:
        for item in runner.stream(request):
            if isinstance(item, GenerationResult):
                final = item
    finally:
        runner.unload()
    assert final is not None
    return {"status": final.status, "error": final.error, "text": final.text, "model": str(path),
            "completion_tokens": final.completion_tokens, "tokens_per_s": final.tokens_per_s,
            "load_s": round(loaded_s, 3), "cpu_path": cpu_backend.current().summary()}


def _assemble_default() -> Path:
    from app.core.models.default_model import default_model_path
    from app.core.paths import ledger_path
    from app.core.store.db import open_db

    db = open_db(ledger_path())
    try:
        return default_model_path(db)
    finally:
        db.close()


def probe_command(model: Path | None = None) -> list[str]:
    """The command that runs `probe_generation()` in a child: the same program as this one
    (the packaged binary, or this Python with `-m app`)."""
    base = [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m", "app"]
    return base + ["doctor", PROBE_OPTION] + (["--model", str(model)] if model is not None else [])


def run_probe(command: list[str] | None = None, *, model: Path | None = None,
              timeout: float = PROBE_TIMEOUT_S) -> ProbeOutcome:
    """Run the probe (default: probe_command(model)) in a child with a throwaway data folder and
    wait at most `timeout` seconds. Blocks the calling thread."""
    command = command if command is not None else probe_command(model)
    with tempfile.TemporaryDirectory(prefix="stillroom-probe-") as home:
        env = {**os.environ, **OFFLINE_ENV, "STILLROOM_HOME": home}
        if not getattr(sys, "frozen", False):
            # The child imports the same code as this process, wherever it was started from.
            root = str(Path(app.__file__).resolve().parent.parent)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        started = time.perf_counter()
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout,
                                  stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired as exc:
            tail = _tail(exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or "")
            return ProbeOutcome(command, None, time.perf_counter() - started, timed_out=True, stderr_tail=tail)
        seconds = time.perf_counter() - started
    name = _signal_name(-done.returncode) if done.returncode < 0 else None
    return ProbeOutcome(command, done.returncode, seconds, signal_name=name, stderr_tail=_tail(done.stderr),
                        result=_last_json(done.stdout))


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _tail(text: str) -> str:
    text = text.strip()
    return text[-STDERR_TAIL_CHARS:]


def _last_json(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}
