"""`stillroom lab run` as a separate process on the real default model: a reduced lab writes its
lesson report and numbers, the teacher calls are in the ledger, and bad settings are named."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def stillroom(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                          env=os.environ.copy(), cwd=REPO, timeout=900)


def test_lab_run_writes_the_lesson(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "lesson"
    done = stillroom("lab", "run", "--style", "sweep", "--samples", "4", "--seed", "5", "--out", str(out),
                     "--n-ctx", "1024", "--threads", "2")
    assert done.returncode == 0, done.stderr
    assert "teacher (lab:sweep): 40 calls" in done.stdout
    assert "audit lab:sweep:" in done.stdout and "lesson report:" in done.stderr
    data = json.loads((out / "lab.json").read_text(encoding="utf-8"))
    assert data["style"] == "sweep" and data["seed"] == 5
    assert [p["samples"] for p in data["curve"]] == [2, 4]
    assert all(0.0 <= p["hard_agreement"] <= 1.0 for p in data["curve"])
    assert "lab:sweep" in data["audit"]
    assert "<svg" in (out / "lesson.html").read_text(encoding="utf-8") and (out / "agreement.svg").exists()
    conn = sqlite3.connect(home / "ledger.db")
    try:
        count = conn.execute("SELECT count(*) FROM generations WHERE workflow = 'lab:sweep' AND source = 'lab'")
        assert count.fetchone()[0] == 40
    finally:
        conn.close()


def test_lab_run_names_bad_settings(home: Path) -> None:
    done = stillroom("lab", "run", "--samples", "500")
    assert done.returncode != 0 and "--samples must be at most 36" in done.stderr
    done = stillroom("lab", "run", "--style", "loud")
    assert done.returncode != 0 and "loud" in done.stderr
    done = stillroom("lab", "run", "--style", "all", "--samples", "500")  # every style checked before any runs
    assert done.returncode != 0 and "--samples must be at most 36" in done.stderr
