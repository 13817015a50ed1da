"""SIGKILL in the middle of a loop of real generations loses no committed row; the chain verifies."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from app.core.store import Ledger

LOOP = """
import sys
from app.core.generation import LogContext, run_to_end
from app.core.models.default_model import resolve_model
from app.core.models.runner import LoadOptions, Runner
from app.core.models.sampling import GenerationRequest, SamplingParams
from app.core.paths import ledger_path
from app.core.store import Ledger

ledger = Ledger.open(ledger_path())
record = resolve_model(ledger.db, None)
runner = Runner()
runner.load(record.sha256, record.info, LoadOptions(n_ctx=512, n_threads=1))
i = 0
while True:
    request = GenerationRequest("completion", prompt=f"Item {i}:", params=SamplingParams(max_tokens=24, seed=i))
    run_to_end(runner, ledger, request, LogContext("batch", workflow="killed"))
    i += 1
"""
ROWS_BEFORE_KILL = 5
TIMEOUT_S = 120


def committed(path: Path) -> int:
    if not path.exists():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT count(*) FROM generations").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def test_sigkill_mid_loop_loses_nothing(home: Path) -> None:
    db = home / "ledger.db"
    process = subprocess.Popen([sys.executable, "-c", LOOP], env=os.environ.copy(),
                               cwd=Path(__file__).resolve().parents[2])
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while committed(db) < ROWS_BEFORE_KILL:
            assert process.poll() is None, "the generation loop died on its own"
            assert time.monotonic() < deadline, "the loop did not commit rows in time"
            time.sleep(0.05)
        seen = committed(db)
        time.sleep(0.15)  # most likely in the middle of a generation now
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    ledger = Ledger.open(db)
    result = ledger.verify()
    rows = ledger.db.execute("SELECT id, status, response, completion_tokens FROM generations ORDER BY id").fetchall()
    ledger.close()
    assert result.ok, result.problem
    assert len(rows) >= seen and [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert all(status == "ok" and response and 1 <= tokens <= 24 for _, status, response, tokens in rows)
    # The ledger takes new rows after the crash.
    again = Ledger.open(db)
    from tests.core.records import record

    again.append(record(1))
    assert again.verify().ok
    again.close()
