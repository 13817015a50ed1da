"""`stillroom doctor` as a separate process: exit code, text with fixes, JSON."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from app.core.models.default_model import default_model_path
from app.core.store import Ledger
from tests.core.records import record

REPO = Path(__file__).resolve().parents[2]


def doctor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", "doctor", *args], capture_output=True, text=True,
                          env=os.environ.copy(), cwd=REPO, timeout=180)


def fill(home: Path) -> None:
    os.chmod(home, 0o700)
    ledger = Ledger.open(home / "ledger.db")
    default_model_path(ledger.db)
    from app.core.models.registry import register_model

    register_model(ledger.db, next((home / "models").glob("*.gguf")))
    ledger.append_many([record(i) for i in range(1, 4)])
    ledger.close()


def test_healthy_exits_zero_and_json_lists_every_check(home: Path) -> None:
    fill(home)
    done = doctor("--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["counts"]["fail"] == 0
    by_name = {check["name"]: check for check in report["checks"]}
    assert by_name["Ledger chain"]["data"]["rows"] == 3
    assert by_name["Offline mode"]["status"] == "ok"  # `stillroom` sets the switches itself
    assert by_name["Data folder"]["data"]["path"] == str(home)
    assert any(name.startswith("Model gemma-3-270m") for name in by_name)
    # The CPU path in use, and a real generation in a child process that ended well.
    cpu = by_name["CPU path"]["data"]
    assert cpu["amx_path_avoided"] is True and cpu["build_features"] and "use_extra_bufts" in cpu
    generation = by_name["Generation"]
    assert generation["status"] == "ok" and generation["data"]["returncode"] == 0
    assert generation["data"]["result"]["completion_tokens"] >= 1


def test_broken_ledger_and_missing_model_exit_one_with_fixes(home: Path) -> None:
    fill(home)
    conn = sqlite3.connect(home / "ledger.db")
    conn.execute("UPDATE generations SET prompt = 'edited by hand' WHERE id = 2")
    conn.commit()
    conn.close()
    next((home / "models").glob("*.gguf")).unlink()
    done = doctor("--quick", "--no-generate")
    assert done.returncode == 1
    out = done.stdout
    assert "FAIL  Ledger chain: the hash chain breaks at row 2" in out
    assert "WARN  Model gemma-3-270m" in out and "missing" in out
    assert out.count("fix: ") >= 2
    assert "1 problem" in out.splitlines()[-1]
