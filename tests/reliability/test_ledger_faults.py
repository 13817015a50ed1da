"""The ledger database locked by another process, read-only, or on a full disk.

Each fault must give a LedgerError whose message names the problem, leave the database intact
(PRAGMA integrity_check ok, the hash chain verifies, the rows committed before are all there), and
the app's write paths (generate_logged, import, batch, the CLI) must report it rather than crash;
once the fault is gone the same operation works (import reruns, batch resumes).

Faults injected and what was observed:
- another process holds BEGIN EXCLUSIVE: appends wait out the busy timeout, then "the ledger is
  locked by another program; close it or try again"; readers still read (WAL); import, generation
  and batch raise it (import adds how many of its rows stay committed); `stillroom import` and
  `stillroom generate` print it as one line and exit 1, no traceback.
- ledger file chmod 0400, its folder chmod 0500 (as an unprivileged user: permissions do not bind
  root), a read-only connection, a read-only mounted file system: "the ledger is read-only; check
  the permissions of the file and its folder". Reading from a folder where SQLite cannot create the
  -shm file now fails at open with that message (it was an unhandled sqlite3.OperationalError at
  the first query). A new ledger in a folder that cannot be written: "permission denied; check the
  permissions of the file and its folder", nothing created.
- disk full, both as a 512 KiB tmpfs that really fills up (where this process may mount one) and
  as SQLite's PRAGMA max_page_count (which raises SQLITE_FULL exactly like a full disk): "the disk
  is full; free some space, nothing already logged was lost"; after space is freed the next append
  works and the chain verifies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.core.batch.jobs import create_job, get_job
from app.core.batch.run import BatchFinished, run_batch
from app.core.progress import drive
from app.core.batch.spec import build_spec
from app.core.errors import LedgerError
from app.core.generation import LogContext, run_to_end
from app.core.ingest import run_import
from app.core.models.runner import Runner
from app.core.models.sampling import GenerationRequest, SamplingParams
from app.core.store import Ledger, open_db
from app.core.store import db as db_module
from tests.core.records import record
from tests.reliability.faults import (
    REPO,
    can_mount,
    give_to_child,
    lock_held_by_another_process,
    remount,
    run_as_user,
    shared_folder,
    small_filesystem,
)

LOCKED = "locked by another program"
READ_ONLY = "read-only"
FULL = "disk is full"
UNLIMITED_PAGES = 1_073_741_823


@pytest.fixture(autouse=True)
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ledgers opened in this process give up on a lock after 0.3 s instead of 10 s."""
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_MS", 300)


def seeded(path: Path, rows: int = 3) -> Ledger:
    ledger = Ledger.open(path)
    ledger.append_many([record(i) for i in range(1, rows + 1)])
    return ledger


def assert_intact(path: Path, rows: int | None = None) -> int:
    """The database passes integrity_check and its chain verifies; returns its row count."""
    ledger = Ledger.open(path)
    try:
        assert ledger.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        result = ledger.verify()
        assert result.ok, result.problem
        if rows is not None:
            assert result.rows == rows
        return result.rows
    finally:
        ledger.close()


def pairs_file(path: Path, count: int, filler: str = "") -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            handle.write(json.dumps({"prompt": f"Question {i}?{filler}", "response": f"Answer {i}.{filler}"}) + "\n")
    return path


def completion(i: int) -> GenerationRequest:
    return GenerationRequest("completion", prompt=f"Item {i}:", params=SamplingParams(max_tokens=3, seed=i))


def small_job(ledger: Ledger, folder: Path) -> int:
    spec = build_spec({"name": "faults", "template": "Say {input}:", "inputs": [{"input": "one"}, {"input": "two"}],
                       "output": "out.jsonl", "params": {"max_tokens": 3, "seed": 1}}, folder)
    return create_job(ledger.db, spec).id


def finish_batch(ledger: Ledger, runner: Runner, job_id: int) -> BatchFinished:
    finished = drive(run_batch(ledger, runner, job_id))
    assert isinstance(finished, BatchFinished)
    return finished


# -- locked by another process ----------------------------------------------------------------------


def test_locked_ledger_append_and_import(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = seeded(path)
    data = pairs_file(tmp_path / "pairs.jsonl", 20)
    with lock_held_by_another_process(path):
        with pytest.raises(LedgerError, match=LOCKED) as info:
            ledger.append(record(4))
        assert str(path) in str(info.value)
        with pytest.raises(LedgerError, match=LOCKED) as info:
            run_import(ledger, data, "locked")
        assert "0 rows of this import were committed" in str(info.value)
        reader = open_db(path, readonly=True)  # WAL: readers are not blocked
        assert reader.execute("SELECT count(*) FROM generations").fetchone()[0] == 3
        reader.close()
    ledger.append(record(4))
    summary = run_import(ledger, data, "locked")
    assert (summary.rows_written, summary.skipped) == (20, 0)
    ledger.close()
    assert_intact(path, 24)


def test_locked_ledger_during_generation_and_batch(runner: Runner, tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = seeded(path)
    job_id = small_job(ledger, tmp_path)
    with lock_held_by_another_process(path):
        with pytest.raises(LedgerError, match=LOCKED):
            run_to_end(runner, ledger, completion(1), LogContext("cli", workflow="locked"))
        with pytest.raises(LedgerError, match=LOCKED) as info:
            drive(run_batch(ledger, runner, job_id))
        assert str(path) in str(info.value)
    assert run_to_end(runner, ledger, completion(1), LogContext("cli", workflow="locked")).result.status == "ok"
    finished = finish_batch(ledger, runner, job_id)
    assert (finished.status, finished.done) == ("done", 2)
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2
    ledger.close()
    assert_intact(path, 3 + 1 + 2)


def test_cli_reports_a_locked_ledger_in_one_line(home: Path, tmp_path: Path) -> None:
    path = home / "ledger.db"
    seeded(path).close()
    data = pairs_file(tmp_path / "pairs.jsonl", 5)
    commands = [["import", str(data), "--workflow", "w"],
                ["generate", "Hello", "--max-tokens", "2", "--n-ctx", "256", "--threads", "1"]]
    with lock_held_by_another_process(path):  # the CLI waits out its real 10 s busy timeout
        running = [subprocess.Popen([sys.executable, "-m", "app", *args], cwd=REPO, env=os.environ.copy(),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for args in commands]
        outputs = [process.communicate(timeout=180) for process in running]
    for process, (_, err) in zip(running, outputs):
        assert process.returncode == 1, err
        assert LOCKED in err and "Traceback" not in err
    assert_intact(path, 3)


# -- read-only ---------------------------------------------------------------------------------------

def append_and_read(path: str) -> dict[str, Any]:
    """Try to append a row and to read the row count; each gives a result or the LedgerError text."""
    out: dict[str, Any] = {}
    try:
        ledger = Ledger.open(path)
        ledger.append(record(9))
        out["append"] = "written"
    except LedgerError as exc:
        out["append"] = str(exc)
    try:
        db = open_db(path, readonly=True)
        out["rows"] = db.execute("SELECT count(*) FROM generations").fetchone()[0]
    except LedgerError as exc:
        out["rows"] = str(exc)
    return out


@pytest.mark.parametrize("target", ["file 0400", "folder 0500"])
def test_read_only_file_or_folder(target: str) -> None:
    with shared_folder() as base:
        folder = base / "home"
        folder.mkdir()
        path = folder / "ledger.db"
        seeded(path).close()
        give_to_child(base)
        if target == "file 0400":
            path.chmod(0o400)
        else:
            folder.chmod(0o500)
        seen = run_as_user(append_and_read, str(path))
        folder.chmod(0o700)
        path.chmod(0o600)
        assert READ_ONLY in seen["append"] and str(path) in seen["append"], seen
        if target == "file 0400":
            assert seen["rows"] == 3  # still readable
        else:  # SQLite cannot create ledger.db-shm beside it, not even to read: one clear error
            assert READ_ONLY in seen["rows"] and "folder" in seen["rows"], seen
        assert_intact(path, 3)


def create_in(path: str) -> dict[str, Any]:
    try:
        Ledger.open(path).close()
        return {"open": "created"}
    except LedgerError as exc:
        return {"open": str(exc)}


def test_new_ledger_in_a_folder_that_cannot_be_written() -> None:
    with shared_folder() as base:
        folder = base / "home"
        folder.mkdir()
        give_to_child(base)
        folder.chmod(0o500)
        seen = run_as_user(create_in, str(folder / "ledger.db"))
        folder.chmod(0o700)
        assert "permission denied" in seen["open"] and "folder" in seen["open"], seen
        assert not (folder / "ledger.db").exists()


def test_read_only_connection_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    seeded(path).close()
    reader = Ledger(open_db(path, readonly=True), path)
    with pytest.raises(LedgerError, match=READ_ONLY):
        reader.append(record(4))
    with pytest.raises(LedgerError, match=READ_ONLY):
        run_import(reader, pairs_file(tmp_path / "p.jsonl", 3), "ro")
    assert reader.verify().ok
    reader.close()
    assert_intact(path, 3)


@pytest.mark.skipif(not can_mount(), reason="mounting a file system needs root on Linux")
def test_read_only_file_system(tmp_path: Path) -> None:
    with small_filesystem(4096) as folder:
        path = folder / "ledger.db"
        seeded(path).close()
        remount(folder, "ro")
        try:
            with pytest.raises(LedgerError, match=READ_ONLY):
                Ledger.open(path).append(record(4))
        finally:
            remount(folder, "rw")
        assert_intact(path, 3)


# -- disk full ---------------------------------------------------------------------------------------


def limit_pages(ledger: Ledger, spare: int) -> None:
    """Fault injection: the database may grow by only `spare` pages (SQLITE_FULL after that)."""
    pages = ledger.db.execute("PRAGMA page_count").fetchone()[0]
    ledger.db.execute(f"PRAGMA max_page_count = {pages + spare}")


def test_disk_full_by_page_limit_then_freed(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = seeded(path)
    limit_pages(ledger, 4)
    written = 3
    with pytest.raises(LedgerError, match=FULL) as info:
        for i in range(4, 1000):
            ledger.append(record(i, response="x" * 3000))
            written += 1
    assert "nothing already logged was lost" in str(info.value)
    assert ledger.verify().ok and ledger.head()[0] == written
    ledger.db.execute(f"PRAGMA max_page_count = {UNLIMITED_PAGES}")
    ledger.append(record(written + 1))
    ledger.close()
    assert_intact(path, written + 1)


def test_import_into_a_full_ledger_keeps_whole_batches_and_reruns(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = seeded(path)
    data = pairs_file(tmp_path / "pairs.jsonl", 1500, filler=" padding" * 20)
    limit_pages(ledger, 150)
    with pytest.raises(LedgerError, match=FULL) as info:
        run_import(ledger, data, "full", batch_rows=100)
    assert "rows of this import were committed before and stay" in str(info.value)
    kept = ledger.head()[2] - 3
    assert 0 < kept < 1500 and kept % 100 == 0  # whole transactions only
    ledger.db.execute(f"PRAGMA max_page_count = {UNLIMITED_PAGES}")
    summary = run_import(ledger, data, "full", batch_rows=100)
    assert (summary.skipped, summary.rows_written) == (kept, 1500 - kept)
    ledger.close()
    assert_intact(path, 1503)


def fill_up(ledger: Ledger) -> int:
    """Fault injection: no room left at all (rows of shrinking size appended until each fails)."""
    limit_pages(ledger, 0)
    written = 0
    for size in (4000, 400, 40, 0):
        try:
            while True:
                ledger.append(record(1000 + written, response="z" * size, prompt="p", params=None))
                written += 1
        except LedgerError as exc:
            assert FULL in str(exc)
    return written


def test_generation_and_batch_on_a_full_disk(runner: Runner, tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = seeded(path)
    job_id = small_job(ledger, tmp_path)
    filler = fill_up(ledger)
    with pytest.raises(LedgerError, match=FULL):
        run_to_end(runner, ledger, completion(1), LogContext("cli", workflow="full"))
    with pytest.raises(LedgerError, match=FULL) as info:
        drive(run_batch(ledger, runner, job_id))
    assert str(path) in str(info.value)
    ledger.db.execute(f"PRAGMA max_page_count = {UNLIMITED_PAGES}")
    finished = finish_batch(ledger, runner, job_id)
    assert (finished.status, finished.done) == ("done", 2) and get_job(ledger.db, job_id).status == "done"
    ledger.close()
    assert_intact(path, 3 + filler + 2)


@pytest.mark.skipif(not can_mount(), reason="mounting a size-limited file system needs root on Linux")
def test_a_file_system_that_really_fills_up(tmp_path: Path) -> None:
    with small_filesystem(1024) as folder:  # an empty ledger with every migration, and its WAL, outgrew 512 KiB
        path = folder / "ledger.db"
        ledger = seeded(path)
        written = 3
        with pytest.raises(LedgerError, match=FULL):
            for i in range(4, 10_000):
                ledger.append(record(i, response="x" * 4000))
                written += 1
        with pytest.raises(LedgerError, match=FULL):
            run_import(ledger, pairs_file(tmp_path / "p.jsonl", 200, filler="y" * 500), "full")
        assert ledger.verify().ok and ledger.head()[0] == written
        ledger.close()
        assert_intact(path, written)
        remount(folder, "size=8m")  # space freed
        again = Ledger.open(path)
        again.append(record(written + 1))
        again.close()
        assert_intact(path, written + 1)
