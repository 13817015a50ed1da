"""`stillroom import`, run as a separate process against a real ledger in STILLROOM_HOME."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "import"
# Runs the real CLI; registers the import command first if app/cli/main.py does not (yet).
RUNNER = (
    "from app.cli.main import cli\n"
    "if 'import' not in cli.commands:\n"
    "    from app.cli.import_cmd import import_command\n"
    "    cli.add_command(import_command)\n"
    "cli(prog_name='stillroom')\n"
)


def stillroom(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-c", RUNNER, *args], capture_output=True, text=True,
                          env=os.environ.copy(), cwd=REPO, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"stillroom {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done


def imported_rows(**filters: str) -> list[dict]:
    args = ["log", "list", "--json", "--source", "import", "--limit", "1000"]
    for key, value in filters.items():
        args += [f"--{key}", value]
    return list(reversed(json.loads(stillroom(*args).stdout)))


def test_import_end_to_end_with_reimport_and_verify(home: Path) -> None:
    done = stillroom("import", str(FIXTURES / "openai_messages.jsonl"), "--workflow", "tutor")
    assert "Imported openai_messages.jsonl (OpenAI chat messages) into workflow 'tutor'" in done.stdout
    assert "4 rows written from 4 records" in done.stdout
    rows = imported_rows(workflow="tutor")
    assert len(rows) == 4 and all(r["source"] == "import" and r["model_sha256"] is None for r in rows)
    assert rows[0]["meta"]["import"]["file"] == "openai_messages.jsonl"
    again = stillroom("import", str(FIXTURES / "openai_messages.jsonl"), "--workflow", "tutor")
    assert "0 rows written" in again.stdout and "Skipped 4 records already imported" in again.stdout
    assert len(imported_rows()) == 4
    verified = stillroom("log", "verify")
    assert verified.stdout.startswith("ledger intact: 4 rows")
    assert (home / "ledger.db").exists()


def test_every_format_through_the_cli(home: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs.db"
    conn = sqlite3.connect(logs)
    conn.executescript((FIXTURES / "llm_logs.sql").read_text(encoding="utf-8"))
    conn.close()
    cases = [
        (["sharegpt.json"], "sharegpt", 3),
        (["alpaca.json", "--format", "alpaca"], "alpaca", 3),
        (["pairs.csv"], "pairs", 3),
        (["pairs.jsonl"], "pairs", 3),
        (["custom_fields.jsonl", "--prompt-field", "q", "--response-field", "a"], "pairs", 2),
        (["openai_batch_input.jsonl"], "openai-batch-input", 3),
        (["openai_batch_output.jsonl", "--join", str(FIXTURES / "openai_batch_input.jsonl")],
         "openai-batch-output", 3),
    ]
    total = 0
    for args, fmt, rows in cases:
        summary = json.loads(stillroom("import", str(FIXTURES / args[0]), *args[1:], "--workflow", fmt,
                                       "--json").stdout)
        assert (summary["format"], summary["rows_written"], summary["malformed"]) == (fmt, rows, 0)
        total += rows
    summary = json.loads(stillroom("import", str(logs), "--workflow", "llm", "--json").stdout)
    assert (summary["format"], summary["rows_written"]) == ("llm-logs", 3)
    joined = imported_rows(workflow="openai-batch-output")
    assert joined[0]["prompt"] == "Write a haiku about a copper still." and joined[0]["response"].startswith("Copper")
    assert len(imported_rows()) == total + 3
    assert stillroom("log", "verify").stdout.startswith(f"ledger intact: {total + 3} rows")


def test_malformed_records_are_listed_with_positions(home: Path) -> None:
    done = stillroom("import", str(FIXTURES / "malformed_messages.jsonl"), "--workflow", "w")
    assert done.returncode == 0 and "3 rows written from 6 records" in done.stdout
    assert "4 malformed records were not imported:" in done.stdout
    for position in (2, 4, 6, 8):
        assert f"  line {position}: " in done.stdout
    summary = json.loads(stillroom("import", str(FIXTURES / "malformed_messages.jsonl"), "--workflow", "w",
                                   "--json").stdout)
    assert summary["skipped"] == 3 and summary["issues"][0].startswith("line 2: invalid JSON")


@pytest.mark.parametrize(("content", "expected"), [
    ("# notes\nnothing to import here\n", "neither JSON, JSON Lines, CSV nor an SQLite database"),
    ('{"colour": "red"}\n', "not a format Stillroom can import"),
])
def test_a_file_in_no_known_format_is_one_clear_error(home: Path, tmp_path: Path, content: str,
                                                      expected: str) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_text(content)
    done = stillroom("import", str(path), "--workflow", "w", check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("Error: ") and "notes.jsonl" in done.stderr and expected in done.stderr
    assert "OpenAI chat messages" in done.stderr  # says what was expected
    assert stillroom("log", "verify").stdout.startswith("ledger intact: empty")


def test_usage_errors(home: Path) -> None:
    missing = stillroom("import", str(FIXTURES / "nope.jsonl"), "--workflow", "w", check=False)
    assert missing.returncode == 1 and "nope.jsonl: no such file" in missing.stderr
    no_workflow = stillroom("import", str(FIXTURES / "pairs.jsonl"), check=False)
    assert no_workflow.returncode == 2 and "--workflow" in no_workflow.stderr
    wrong = stillroom("import", str(FIXTURES / "alpaca.json"), "--workflow", "w", "--format", "sharegpt",
                      check=False)
    assert wrong.returncode == 1 and "reads as ShareGPT" in wrong.stderr
    fields = stillroom("import", str(FIXTURES / "alpaca.json"), "--workflow", "w", "--format", "alpaca",
                       "--prompt-field", "x", check=False)
    assert fields.returncode == 2 and "--prompt-field" in fields.stderr


def test_ctrl_c_cancels_between_records_and_a_rerun_finishes(home: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    with big.open("w") as handle:
        for i in range(15_000):
            handle.write(json.dumps({"prompt": f"Question {i}", "response": f"Answer {i}"}) + "\n")
    process = subprocess.Popen([sys.executable, "-c", RUNNER, "import", str(big), "--workflow", "big"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
                               cwd=REPO)
    ledger = home / "ledger.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if ledger.exists() and _row_count(ledger) > 0:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    if process.returncode == 0:
        pytest.skip("the import finished before Ctrl+C arrived")
    assert process.returncode == 130, err
    assert out.startswith("Cancelled big.jsonl") and "run the same command again" in err
    kept = _row_count(ledger)
    assert 0 < kept < 15_000 and kept % 500 == 0  # whole batches only
    done = json.loads(stillroom("import", str(big), "--workflow", "big", "--json").stdout)
    assert (done["skipped"], done["rows_written"]) == (kept, 15_000 - kept)
    assert stillroom("log", "verify").stdout.startswith("ledger intact: 15000 rows")


def _row_count(path: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT count(*) FROM generations").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
