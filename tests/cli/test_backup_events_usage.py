"""`stillroom log backup`, `log events`, `log verify` over the event chain and `stillroom usage`,
run as separate processes on a ledger built for the test (no model needed)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from app.core.store import Ledger
from tests.core.records import record

REPO = Path(__file__).resolve().parents[2]
APPENDER = """
import sys, time
from app.core.store import Ledger
from tests.core.records import record
ledger = Ledger.open(sys.argv[1])
i = 0
while True:
    i += 1
    ledger.append_many([record(i * 10 + k) for k in range(5)])
    if i == 2:
        print("appending", flush=True)
"""


def stillroom(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STILLROOM_HOME": str(home), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"stillroom {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def _seed(home: Path) -> None:
    now = datetime.now(timezone.utc)
    ledger = Ledger.open(home / "ledger.db")
    ledger.append_many([
        record(1, started_at=now.isoformat(), source="chat", workflow="essays", prompt_tokens=10,
               completion_tokens=90, duration_ms=1500.0),
        record(2, started_at=now.isoformat(), source="server", workflow="grading", model_sha256="b" * 64,
               model_name="Grader", prompt_tokens=40, completion_tokens=2, duration_ms=100.0),
        record(3, started_at=(now - timedelta(days=20)).isoformat(), source="cli", workflow="essays",
               prompt_tokens=5, completion_tokens=5, duration_ms=500.0),
    ])
    ledger.close()


def test_backup_while_another_process_appends_then_verifies(home: Path, tmp_path: Path) -> None:
    _seed(home)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen([sys.executable, "-c", APPENDER, str(home / "ledger.db")], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "appending"
        copy_home = tmp_path / "copy"
        done = stillroom(home, "log", "backup", str(copy_home / "ledger.db"))
        time.sleep(0.2)
        assert writer.poll() is None  # still appending after the backup
    finally:
        writer.kill()
        writer.wait()
        if writer.stdout is not None:
            writer.stdout.close()
    assert "backed up" in done.stdout
    conn = sqlite3.connect(copy_home / "ledger.db")  # a plain sqlite3 opens it: one file, no -wal needed
    rows = conn.execute("SELECT count(*) FROM generations").fetchone()[0]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()
    assert rows >= 13 and f"{rows} generations" in done.stdout
    verified = stillroom(copy_home, "log", "verify")
    assert f"ledger intact: {rows} rows" in verified.stdout and "event log intact" in verified.stdout
    # the original keeps its backup event; the copy holds none (it was taken before the event)
    events = json.loads(stillroom(home, "log", "events", "--json").stdout)
    assert [e["kind"] for e in events] == ["backup"] and events[0]["details"]["generations"] == rows
    # an existing file is refused (exit 1, the reason) unless --force
    again = stillroom(home, "log", "backup", str(copy_home / "ledger.db"), check=False)
    assert again.returncode == 1 and "already exists" in again.stderr and "--force" in again.stderr
    forced = stillroom(home, "log", "backup", "--force", str(copy_home / "ledger.db"))
    assert "backed up" in forced.stdout


def test_events_are_listed_escaped_and_verified(home: Path, tmp_path: Path) -> None:
    _seed(home)
    stillroom(home, "keys", "create", "--workflow", "grading")
    evil = tmp_path / "evil\x1b]0;owned\x07name.jsonl"
    evil.write_text(json.dumps({"prompt": "hello", "response": "world"}) + "\n")
    stillroom(home, "import", str(evil), "--workflow", "imported")
    stillroom(home, "log", "export", "--out", str(tmp_path / "out.jsonl"), "--workflow", "essays")
    listed = stillroom(home, "log", "events")
    lines = listed.stdout.splitlines()
    assert [line.split()[2] for line in lines] == ["export", "import", "key_created"]
    assert "\x1b" not in listed.stdout and "\x07" not in listed.stdout
    assert "evil\\x1b]0;owned\\x07name.jsonl" in listed.stdout
    assert "exported 2 record(s) as jsonl" in listed.stdout
    as_json = json.loads(stillroom(home, "log", "events", "--json", "--limit", "1").stdout)
    assert len(as_json) == 1 and as_json[0]["details"]["filters"] == {"workflow": "essays"}
    assert "event log intact: 3 events" in stillroom(home, "log", "verify").stdout
    conn = sqlite3.connect(home / "ledger.db")
    conn.execute("UPDATE events SET summary = 'nothing to see' WHERE kind = 'import'")
    conn.commit()
    conn.close()
    broken = stillroom(home, "log", "verify", check=False)
    assert broken.returncode == 1 and "event log broken at event 2" in broken.stderr


def test_usage_numbers_text_and_json(home: Path) -> None:
    empty = stillroom(home, "usage")
    assert "no generations logged" in empty.stderr
    _seed(home)
    data = json.loads(stillroom(home, "usage", "--json").stdout)
    assert list(data) == ["7d", "30d", "90d", "all"]
    assert data["7d"]["totals"]["generations"] == 2 and data["7d"]["totals"]["total_tokens"] == 142
    assert data["30d"]["totals"]["generations"] == 3 and data["all"]["totals"]["duration_ms"] == 2100.0
    assert {g["label"]: g["generations"] for g in data["all"]["by_workflow"]} == {"essays": 2, "grading": 1}
    assert {g["key"]: g["completion_tokens"] for g in data["7d"]["by_source"]} == {"chat": 90, "server": 2}
    assert [g["label"] for g in data["7d"]["by_model"]] == ["Test Model · aaaaaaaa", "Grader · bbbbbbbb"]
    one = json.loads(stillroom(home, "usage", "--json", "--days", "1").stdout)
    assert list(one) == ["1d"] and one["1d"]["totals"]["generations"] == 2
    text = stillroom(home, "usage").stdout
    assert "last 7 days" in text and "per model (all time)" in text and "Grader · bbbbbbbb" in text
    bad = stillroom(home, "usage", "--days", "0", check=False)
    assert bad.returncode == 2 and "--days" in bad.stderr
