"""`stillroom proxy` as a user runs it: a subprocess in front of an engine (an in-memory responder),
printing where it listens and what it learned of the engine's models, logging what passes, and
refusing with a reason what it cannot do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from app.core.store import Ledger
from tests.e2e.ledger_rows import rows
from tests.e2e.memory_responder import CHAT_BODY, memory_responder

REPO = Path(__file__).resolve().parents[2]


def env_for(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "STILLROOM_HOME": str(home), **extra}


def test_the_command_forwards_logs_and_stops_on_sigterm(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with memory_responder() as (engine, seen):
        process = subprocess.Popen([sys.executable, "-m", "app", "proxy", "--upstream", engine, "--port", "0",
                                    "--upstream-key-env", "ENGINE_KEY"], cwd=REPO, stderr=subprocess.PIPE,
                                   text=True, env=env_for(home, ENGINE_KEY="engine-secret"))
        try:
            assert process.stderr is not None
            lines = []
            for line in process.stderr:
                lines.append(line)
                if line.startswith("keys "):
                    break
            url = next(line.split(" at ")[1].strip() for line in lines if "is proxying at" in line)
            assert any("memory-model: the name the engine reports (unverified)" in line for line in lines)
            request = urllib.request.Request(f"{url}/chat/completions", data=json.dumps(
                {"model": "memory-model", "messages": [{"role": "user", "content": "hi"}]}).encode(),
                headers={"Content-Type": "application/json", "X-Stillroom-Workflow": "cli-proxy"})
            with urllib.request.urlopen(request, timeout=30) as answer:
                assert answer.read() == CHAT_BODY
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)
        assert process.returncode == 0
        assert seen[0]["Authorization"] == "Bearer engine-secret"
    [row] = rows(home / "ledger.db", "cli-proxy")
    assert row["source"] == "proxy" and row["meta"]["proxy"]["upstream"] == engine
    ledger = Ledger.open(home / "ledger.db")
    try:
        assert ledger.verify().ok
    finally:
        ledger.close()


def test_an_unset_key_variable_and_a_bad_url_are_refused_with_a_reason(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in env_for(home).items() if k != "NO_SUCH_KEY"}
    unset = subprocess.run([sys.executable, "-m", "app", "proxy", "--upstream", "http://127.0.0.1:9/v1",
                            "--upstream-key-env", "NO_SUCH_KEY"], cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=60)
    assert unset.returncode != 0 and "NO_SUCH_KEY" in unset.stderr and "not set" in unset.stderr
    bad = subprocess.run([sys.executable, "-m", "app", "proxy", "--upstream", "localhost:11434"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "not an http:// or https:// URL" in bad.stderr
    missing = subprocess.run([sys.executable, "-m", "app", "proxy"], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode != 0 and "--upstream" in missing.stderr
