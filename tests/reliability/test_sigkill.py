"""SIGKILL in the middle of generation, a batch, an import and a provenance run, each through the
real `stillroom` command (or a real generation loop) in its own process.

After each kill: every row committed before it is still there, the hash chain verifies, PRAGMA
integrity_check is ok, and the operation can be resumed (batch resume) or simply run again
(import skips what it already wrote; provenance starts over and its statement verifies).

Faults injected and what was observed:
- a loop of real generations killed mid-generation: no committed row lost, no half-written row
  (a generation is one row committed at its end), the ledger takes new rows after the crash;
- `stillroom generate` killed while streaming: nothing of the killed generation is written, earlier
  rows intact, the same command then works;
- `stillroom batch run` killed after 3 of 8 generations: `stillroom batch resume` finishes with
  no duplicates and no gaps, the output file matches the ledger's rows;
- `stillroom import` killed mid-file: only whole 500-row transactions were committed; running the
  same import again skips them and writes exactly the rest;
- `stillroom provenance` killed while matching the dataset: the ledger is untouched (provenance
  only reads it), no statement files are left; the rerun writes them and `stillroom verify`
  passes. Output files and the signing key are written to a temporary file and renamed (linked)
  into place, so a kill leaves the old file or none; an empty card or key left by an older
  version's kill is replaced on the rerun (tested below).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.core.store import Ledger
from app.core.store.queries import LogFilter, list_generations
from tests.core.records import record

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120


LOOP = """
import sys
from app.core.generation import LogContext, run_to_end
from app.core.models.resolve import resolve_model
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
                               cwd=REPO)
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
    again.append(record(1))
    assert again.verify().ok
    again.close()


# -- through the real CLI ----------------------------------------------------------------------------


def stillroom(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "app", *args], cwd=REPO, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, f"stillroom {' '.join(args)} failed ({done.returncode}):\n{done.stderr}"
    return done


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "app", *args], cwd=REPO, env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_when(process: subprocess.Popen[str], ready: Callable[[], bool], what: str) -> None:
    """SIGKILL `process` as soon as `ready()` is true (polled); fails if it ends first or never gets there."""
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not ready():
            if process.poll() is not None:
                raise AssertionError(f"it ended before {what} ({process.returncode}): {process.stderr.read()}")
            assert time.monotonic() < deadline, f"{what} did not happen in time"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]


def assert_intact(path: Path) -> int:
    """integrity_check ok and the chain verifies; returns the row count."""
    ledger = Ledger.open(path)
    try:
        assert ledger.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        result = ledger.verify()
        assert result.ok, result.problem
        return result.rows
    finally:
        ledger.close()


def test_sigkill_during_cli_generate(home: Path) -> None:
    ledger_file = home / "ledger.db"
    model = ["--n-ctx", "512", "--threads", "1", "--seed", "4"]
    stillroom("generate", "Count to three:", "--max-tokens", "4", *model)
    assert assert_intact(ledger_file) == 1
    process = start("generate", "Write a very long story about a lighthouse keeper:", "--max-tokens", "400",
                    "--temperature", "1.0", *model)
    kill_when(process, lambda: bool(process.stdout.read(1)), "the first generated text")  # type: ignore[union-attr]
    assert assert_intact(ledger_file) == 1  # the killed generation wrote nothing, the earlier row is there
    stillroom("generate", "Count to three:", "--max-tokens", "4", *model)
    assert assert_intact(ledger_file) == 2


def write_job(folder: Path, items: int, samples: int, max_tokens: int) -> Path:
    (folder / "inputs.jsonl").write_text("".join(json.dumps({"topic": f"topic {i}", "level": "short"}) + "\n"
                                                 for i in range(items)))
    import yaml

    spec = {"name": "unit", "workflow": "batch-test", "template": "Write a {level} line about {topic}:",
            "inputs": "inputs.jsonl", "samples": samples, "output": "out/result.jsonl",
            "params": {"temperature": 0.7, "max_tokens": max_tokens, "seed": 100}}
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_sigkill_during_batch_then_resume_has_no_duplicates_and_no_gaps(home: Path, tmp_path: Path) -> None:
    job_file = write_job(tmp_path, items=4, samples=2, max_tokens=12)
    ledger_file = home / "ledger.db"
    process = start("batch", "run", str(job_file), "--n-ctx", "512", "--threads", "1")
    kill_when(process, lambda: committed(ledger_file) >= 3, "3 committed generations")
    assert_intact(ledger_file)
    resumed = stillroom("batch", "resume", "1", "--n-ctx", "512")
    assert "8/8" in resumed.stderr
    lines = [json.loads(line) for line in (tmp_path / "out" / "result.jsonl").read_text().splitlines()]
    assert [(line["item"], line["sample"]) for line in lines] == [(i, s) for i in range(4) for s in range(2)]
    assert_intact(ledger_file)
    ledger = Ledger.open(ledger_file)
    ok_rows = list_generations(ledger.db, LogFilter(workflow="batch-test", status="ok"), limit=None)
    ledger.close()
    assert sorted(line["ledger_id"] for line in lines) == sorted(row["id"] for row in ok_rows)
    listed = stillroom("batch", "list")
    assert "done" in listed.stdout and "8/8" in listed.stdout


IMPORT_ROWS = 30_000


def test_sigkill_during_import_then_rerun_finishes(home: Path, tmp_path: Path) -> None:
    ledger_file = home / "ledger.db"
    ledger = Ledger.open(ledger_file)
    ledger.append_many([record(i) for i in range(3)])
    ledger.close()
    big = tmp_path / "big.jsonl"
    with big.open("w") as handle:
        for i in range(IMPORT_ROWS):
            handle.write(json.dumps({"prompt": f"Question {i}", "response": f"Answer {i}"}) + "\n")
    process = start("import", str(big), "--workflow", "big")
    kill_when(process, lambda: committed(ledger_file) > 3, "the first committed batch")
    kept = assert_intact(ledger_file) - 3
    if kept == IMPORT_ROWS:
        pytest.skip("the import finished before the kill arrived")
    assert 0 < kept < IMPORT_ROWS and kept % 500 == 0  # whole transactions only
    done = json.loads(stillroom("import", str(big), "--workflow", "big", "--json").stdout)
    assert (done["skipped"], done["rows_written"], done["malformed"]) == (kept, IMPORT_ROWS - kept, 0)
    assert assert_intact(ledger_file) == IMPORT_ROWS + 3
    again = json.loads(stillroom("import", str(big), "--workflow", "big", "--json").stdout)
    assert (again["skipped"], again["rows_written"]) == (IMPORT_ROWS, 0)


# -- provenance --------------------------------------------------------------------------------------

PROVENANCE_ROWS = 20_000
OUTPUTS = ("README.md", "croissant.json", "provenance.dsse.json", "provenance.pub.pem")


def response_of(i: int) -> str:
    return f"Lantern {i} burned a steady light from dusk until the dawn came over hill {i % 97}."


def provenance_fixture(home: Path, folder: Path, rows: int) -> Path:
    """A ledger of `rows` generations and a dataset of the same rows, half of them lightly edited."""
    ledger = Ledger.open(home / "ledger.db")
    ledger.append_many([record(i, workflow="lanterns", response=response_of(i)) for i in range(rows)])
    ledger.close()
    folder.mkdir()
    dataset = folder / "lanterns.jsonl"
    with dataset.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            response = response_of(i).replace("steady", "gentle") if i % 2 else response_of(i)
            handle.write(json.dumps({"prompt": record(i)["prompt"], "response": response}) + "\n")
    return dataset


def has_open(pid: int, path: Path) -> bool:
    """True while process `pid` has `path` open (Linux /proc)."""
    try:
        return any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="watches the process's open files in /proc")
def test_sigkill_during_provenance_then_rerun_verifies(home: Path, tmp_path: Path) -> None:
    dataset = provenance_fixture(home, tmp_path / "release", PROVENANCE_ROWS)
    ledger_file = home / "ledger.db"
    head = Ledger.open(ledger_file)
    before = head.head()
    head.close()
    process = start("provenance", str(dataset), "--no-screening", "--license", "cc-by-4.0")
    kill_when(process, lambda: has_open(process.pid, ledger_file.resolve()) and has_open(process.pid, dataset.resolve()),
              "matching the dataset")  # both files open: matching
    ledger = Ledger.open(ledger_file)
    assert ledger.head() == before and ledger.verify().ok  # provenance never writes the ledger
    ledger.close()
    assert not [name for name in OUTPUTS if (dataset.parent / name).exists()]
    done = stillroom("provenance", str(dataset), "--no-screening", "--license", "cc-by-4.0")
    assert f"{dataset.name}: {PROVENANCE_ROWS} rows, 0 malformed" in done.stdout
    checked = stillroom("verify", str(dataset.parent / "provenance.dsse.json"), str(dataset))
    assert checked.stdout.strip().endswith("verified")
    assert assert_intact(ledger_file) == PROVENANCE_ROWS


def test_rerun_after_a_kill_that_left_an_empty_card(home: Path, tmp_path: Path) -> None:
    dataset = provenance_fixture(home, tmp_path / "release", 20)
    (dataset.parent / "README.md").write_text("")  # what a kill right after open(..., "w") leaves
    done = stillroom("provenance", str(dataset), "--no-screening", check=False)
    assert done.returncode == 0, done.stderr
    assert "stillroom" in (dataset.parent / "README.md").read_text().lower()
    assert not list(dataset.parent.glob(".*.tmp"))


def test_rerun_after_a_kill_that_left_an_empty_key(home: Path, tmp_path: Path) -> None:
    dataset = provenance_fixture(home, tmp_path / "release", 20)
    keys = home / "keys"
    keys.mkdir(mode=0o700)
    (keys / "provenance-ed25519.pem").write_bytes(b"")  # what a kill between O_CREAT and write leaves
    os.chmod(keys / "provenance-ed25519.pem", 0o600)
    done = stillroom("provenance", str(dataset), "--no-screening", check=False)
    assert done.returncode == 0, done.stderr
    key = keys / "provenance-ed25519.pem"
    assert b"PRIVATE KEY" in key.read_bytes() and (key.stat().st_mode & 0o777) == 0o600
    assert [p.name for p in keys.iterdir()] == ["provenance-ed25519.pem"]  # no temporary file left
