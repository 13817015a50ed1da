"""simonw/llm's logs.db of every schema in use, made by the real `llm` package, through `stillroom import`.

The new schema (llm 0.32 on: turns over a message store) is written by the real `llm` command with
the SmolLM2 plugin in a temporary LLM_USER_PATH: a prompt with a system prompt, its continuation
(`llm -c`) and a separate prompt. What llm itself reports (`llm logs --json`) is the witness. The
old schema (`responses`, llm 0.2x-0.31) is made by llm's own migrations and filled with rows as
those versions wrote them; a database holding both is the real one with old rows added.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import stillroom

LLM = [sys.executable, "-m", "llm"]
SYSTEM = "Answer in one short sentence."
PROMPTS = ("Name a colour of the sea.", "Name another one.", "Say hello to a lighthouse keeper.")


def run_llm(user_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LLM_USER_PATH": str(user_path)}
    done = subprocess.run([*LLM, *args], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def real_logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """A logs.db the real llm CLI wrote, and llm's own account of it (`llm logs --json`)."""
    user_path = tmp_path_factory.mktemp("llm-user")
    run_llm(user_path, "-m", "SmolLM2", "-s", SYSTEM, PROMPTS[0])
    run_llm(user_path, "-c", PROMPTS[1])
    run_llm(user_path, "-m", "SmolLM2", PROMPTS[2])
    logged = json.loads(run_llm(user_path, "logs", "-n", "0", "--json").stdout)
    assert [entry["prompt"] for entry in logged] == list(PROMPTS)
    return user_path / "logs.db", logged


def rows(workflow: str) -> list[dict[str, Any]]:
    done = stillroom("log", "list", "--json", "--workflow", workflow, "--limit", "1000")
    return list(reversed(json.loads(done.stdout)))


def test_real_llm_logs_import_completely_and_only_once(home: Path, real_logs: tuple[Path, list[dict]]) -> None:
    logs, logged = real_logs
    tables = {name for (name,) in sqlite3.connect(logs).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"turns", "messages", "parts", "threads"} <= tables  # the schema of llm 0.32 on
    done = stillroom("import", str(logs), "--workflow", "llm")
    assert "3 rows written from 3 records" in done.stdout
    imported = rows("llm")
    assert [(r["prompt"], r["response"], r["model_name"], r["started_at"]) for r in imported] == [
        (e["prompt"], e["response"], e["model"], e["datetime_utc"]) for e in logged]
    assert [r["meta"]["import"]["llm_id"] for r in imported] == [e["id"] for e in logged]
    assert all(r["mode"] == "chat" and r["duration_ms"] == e["duration_ms"] for r, e in zip(imported, logged))
    first, continued, separate = imported
    assert first["system_prompt"] == SYSTEM
    assert first["messages"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPTS[0]}]
    assert continued["messages"] == [  # the history llm sent with `llm -c`
        {"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPTS[0]},
        {"role": "assistant", "content": logged[0]["response"]}, {"role": "user", "content": PROMPTS[1]}]
    assert continued["meta"]["import"]["conversation_id"] == first["meta"]["import"]["conversation_id"]
    assert separate["messages"] == [{"role": "user", "content": PROMPTS[2]}]
    assert separate["meta"]["import"]["conversation_id"] != first["meta"]["import"]["conversation_id"]
    again = stillroom("import", str(logs), "--workflow", "llm")
    assert "0 rows written from 3 records" in again.stdout and "Skipped 3 records" in again.stdout
    assert len(rows("llm")) == 3
    assert stillroom("log", "verify").stdout.startswith("ledger intact: 3 rows")


LEGACY = (  # rows as llm 0.2x-0.31 wrote them: a conversation of two, and a completion model's row
    {"id": "01h0legacy0000000000000001", "model": "gpt-4o-mini", "prompt": "Two plus two?", "system": "Be terse.",
     "prompt_json": None, "options_json": "{\"temperature\": 0.2}", "response": "Four.",
     "response_json": "{\"finish_reason\": \"stop\"}", "conversation_id": "01h0legacyconversation0001",
     "duration_ms": 812, "datetime_utc": "2024-05-01T10:00:00.123456", "input_tokens": 14, "output_tokens": 2},
    {"id": "01h0legacy0000000000000002", "model": "gpt-4o-mini", "prompt": "And times three?", "system": None,
     "prompt_json": None, "options_json": "{}", "response": "Twelve.", "response_json": None,
     "conversation_id": "01h0legacyconversation0001", "duration_ms": 640,
     "datetime_utc": "2024-05-01T10:00:09.000001", "input_tokens": 20, "output_tokens": 3},
    {"id": "01h0legacy0000000000000003", "model": "gpt-3.5-turbo-instruct", "prompt": "Once upon a time",
     "system": None, "prompt_json": "{\"messages\": [\"Once upon a time\"]}", "options_json": "{}",
     "response": " there was a lamp.", "response_json": "{\"object\": \"text_completion\"}",
     "conversation_id": "01h0legacyconversation0002", "duration_ms": 300,
     "datetime_utc": "2024-05-02T08:30:00.000000", "input_tokens": 4, "output_tokens": 6},
)


def add_legacy_rows(logs: Path) -> None:
    """Old rows in llm's `responses` and `conversations` tables (created by llm's own migrations)."""
    conn = sqlite3.connect(logs)
    with conn:
        for row in LEGACY:
            conn.execute("INSERT OR IGNORE INTO conversations (id, name, model) VALUES (?, ?, ?)",
                         [row["conversation_id"], row["prompt"], row["model"]])
            conn.execute(f"INSERT INTO responses ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                         list(row.values()))
    conn.close()


def test_old_schema_made_by_llms_migrations(home: Path, tmp_path: Path) -> None:
    import sqlite_utils
    from llm.migrations import migrate

    logs = tmp_path / "logs.db"
    migrate(sqlite_utils.Database(logs))
    add_legacy_rows(logs)
    done = stillroom("import", str(logs), "--workflow", "old")
    assert "3 rows written from 3 records" in done.stdout
    first, second, completion = rows("old")
    assert [r["started_at"] for r in (first, second, completion)] == [
        "2024-05-01T10:00:00.123456+00:00", "2024-05-01T10:00:09.000001+00:00", "2024-05-02T08:30:00.000000+00:00"]
    assert second["messages"] == [  # the conversation's history rebuilt, as llm sent it
        {"role": "system", "content": "Be terse."}, {"role": "user", "content": "Two plus two?"},
        {"role": "assistant", "content": "Four."}, {"role": "user", "content": "And times three?"}]
    assert (second["mode"], second["prompt"], second["response"]) == ("chat", "And times three?", "Twelve.")
    assert first["params"] == {"temperature": 0.2} and first["finish_reason"] == "stop"
    assert (completion["mode"], completion["messages"], completion["prompt"], completion["response"]) == (
        "completion", None, "Once upon a time", " there was a lamp.")
    assert completion["model_name"] == "gpt-3.5-turbo-instruct"


def test_a_database_holding_both_schemas(home: Path, tmp_path: Path, real_logs: tuple[Path, list[dict]]) -> None:
    logs = tmp_path / "logs.db"
    shutil.copyfile(real_logs[0], logs)
    add_legacy_rows(logs)
    done = stillroom("import", str(logs), "--workflow", "both")
    assert "6 rows written from 6 records" in done.stdout
    imported = rows("both")
    assert [r["meta"]["import"]["llm_table"] for r in imported] == ["responses"] * 3 + ["turns"] * 3
    assert [r["prompt"] for r in imported] == [row["prompt"] for row in LEGACY] + list(PROMPTS)
    assert [r["response"] for r in imported[3:]] == [e["response"] for e in real_logs[1]]
    again = stillroom("import", str(logs), "--workflow", "both")
    assert "Skipped 6 records" in again.stdout


def test_an_llm_database_with_no_logs_says_so_and_fails(home: Path, tmp_path: Path) -> None:
    import sqlite_utils
    from llm.migrations import migrate

    logs = tmp_path / "logs.db"
    migrate(sqlite_utils.Database(logs))
    done = stillroom("import", str(logs), "--workflow", "empty", check=False)
    assert done.returncode == 1
    assert "Nothing imported: logs.db: it holds no records to import" in done.stderr
