"""The real `stillroom` command line, run as a separate process on the real default model."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.models.bundled import SMOLLM2_SAMPLING
from app.core.models.sampling import SamplingParams
from tests.core.gguf_files import write_corrupt_header, write_huge_sparse_gguf, write_truncated

REPO = Path(__file__).resolve().parents[2]


def stillroom(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, input=stdin,
                          env=os.environ.copy(), cwd=REPO, timeout=180)
    if check and done.returncode != 0:
        raise AssertionError(f"stillroom {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done


def test_generate_streams_and_logs(home: Path) -> None:
    done = stillroom("generate", "--max-tokens", "12", "--seed", "7", "--temperature", "0.5", "--top-p", "0.9",
                     "--top-k", "20", "--workflow", "cli-test", "The sky is")
    assert done.stdout.strip()
    assert "[#1 ok" in done.stderr and "seed 7" in done.stderr
    rows = json.loads(stillroom("log", "list", "--json").stdout)
    assert len(rows) == 1
    row = rows[0]
    assert row["response"].strip() == done.stdout.strip()
    assert row["workflow"] == "cli-test" and row["source"] == "cli" and row["seed"] == 7
    assert row["params"]["top_p"] == 0.9 and row["params"]["top_k"] == 20 and row["params"]["temperature"] == 0.5
    assert (home / "ledger.db").exists()


def test_generate_chat_with_system_prompt(home: Path) -> None:
    """--chat runs the bundled chat model with its own sampling defaults and the GGUF's chat template;
    without --chat the default (completion) model answers."""
    stillroom("generate", "--chat", "--system", "Reply in one word.", "--max-tokens", "8", "Name a colour.")
    row = json.loads(stillroom("log", "show", "1", "--json").stdout)
    assert row["mode"] == "chat" and row["chat_format"] == "template" and row["system_prompt"] == "Reply in one word."
    chat_sha = resolve_model_sha("chat")
    assert row["model_sha256"] == chat_sha
    assert {k: row["params"][k] for k in SMOLLM2_SAMPLING} == SMOLLM2_SAMPLING
    stillroom("generate", "--max-tokens", "4", "The sky is")
    completion = json.loads(stillroom("log", "show", "2", "--json").stdout)
    assert completion["model_sha256"] == resolve_model_sha("default") != chat_sha
    assert completion["params"]["repeat_penalty"] == SamplingParams().repeat_penalty


def resolve_model_sha(ref: str) -> str:
    from app.core.models.resolve import resolve_model
    from app.core.store import Ledger

    ledger = Ledger.open(Path(os.environ["STILLROOM_HOME"]) / "ledger.db")
    try:
        return resolve_model(ledger.db, ref).sha256
    finally:
        ledger.close()


def test_generate_reads_stdin(home: Path) -> None:
    stillroom("generate", "--max-tokens", "4", "-", stdin="Prompt from a pipe")
    assert json.loads(stillroom("log", "show", "1", "--json").stdout)["prompt"] == "Prompt from a pipe"


def test_log_list_filters_search_show_export_and_verify(home: Path, tmp_path: Path) -> None:
    stillroom("generate", "--max-tokens", "4", "--workflow", "alpha", "Lighthouses guide ships")
    stillroom("generate", "--max-tokens", "4", "--workflow", "beta", "Volcanoes erupt")
    listed = stillroom("log", "list").stdout
    assert "#2" in listed and "#1" in listed and "Volcanoes" in listed
    only_alpha = json.loads(stillroom("log", "list", "--json", "--workflow", "alpha").stdout)
    assert [r["id"] for r in only_alpha] == [1]
    found = json.loads(stillroom("log", "list", "--json", "--search", "volcanoes").stdout)
    assert [r["id"] for r in found] == [2]
    assert json.loads(stillroom("log", "list", "--json", "--limit", "1").stdout)[0]["id"] == 2
    shown = stillroom("log", "show", "2").stdout
    assert "Volcanoes erupt" in shown and "--- response ---" in shown
    for fmt, name in (("jsonl", "a.jsonl"), ("markdown", "a.md"), ("sharegpt", "a.json")):
        stillroom("log", "export", "--format", fmt, "--out", str(tmp_path / name))
        assert (tmp_path / name).stat().st_size > 0
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 2
    assert len(json.loads((tmp_path / "a.json").read_text())) == 2
    verified = stillroom("log", "verify")
    assert verified.stdout.startswith("ledger intact: 2 rows, chain head ")


def test_verify_names_the_first_bad_row(home: Path) -> None:
    for i in range(3):
        stillroom("generate", "--max-tokens", "3", f"Line {i}")
    conn = sqlite3.connect(home / "ledger.db")
    conn.execute("UPDATE generations SET response = 'forged' WHERE id = 2")
    conn.commit()
    conn.close()
    done = stillroom("log", "verify", check=False)
    assert done.returncode != 0
    assert "row 2" in done.stderr and "edited" in done.stderr and "Traceback" not in done.stderr


def test_models_add_list_info(home: Path, default_model) -> None:  # noqa: ANN001
    path = default_model.info.path
    added = stillroom("models", "add", path).stdout
    assert default_model.sha256 in added and "Q4_K_M" in added
    listed = json.loads(stillroom("models", "list", "--json").stdout)
    assert listed[0]["sha256"] == default_model.sha256 and listed[0]["architecture"] == "gemma3"
    info = stillroom("models", "info", default_model.sha256[:10]).stdout
    assert "Gemma 3 270m" in info and "context_length: 32768" in info
    as_json = json.loads(stillroom("models", "info", path, "--json").stdout)
    assert as_json["license"] == "gemma" and as_json["has_chat_template"] == 0


@pytest.mark.parametrize("case", ["not-gguf", "truncated", "corrupt", "missing", "too-large"])
def test_bad_model_gives_one_clear_error_and_keeps_the_ledger(home: Path, tmp_path: Path, default_model,  # noqa: ANN001
                                                              case: str) -> None:
    stillroom("generate", "--max-tokens", "3", "Before the bad model")
    source = Path(default_model.info.path)
    target = tmp_path / f"{case}.gguf"
    if case == "not-gguf":
        target.write_text("<html>not a model</html>\n" * 40)
    elif case == "truncated":
        write_truncated(source, target, 100_000_000)
    elif case == "corrupt":
        write_corrupt_header(source, target)
    elif case == "too-large":
        write_huge_sparse_gguf(target, 4 * 1024**4)
    expected = {"not-gguf": "not a GGUF model file", "truncated": "truncated", "corrupt": "corrupt",
                "missing": "file not found", "too-large": "too large for this machine's memory"}[case]
    attempts = [("generate", "--model", str(target), "hello")]
    if case != "too-large":  # registering without loading is allowed (it would hash 4 TiB of zeros)
        attempts.append(("models", "add", str(target)))
    for args in attempts:
        done = stillroom(*args, check=False)
        assert done.returncode == 1, done.stderr
        assert str(target) in done.stderr and expected in done.stderr
        assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
    verified = stillroom("log", "verify")
    assert "1 rows" in verified.stdout


def test_user_mistakes_are_errors_not_tracebacks(home: Path) -> None:
    for args, needle in ((("log", "show", "42"), "no generation with id 42"),
                         (("generate", "--temperature", "-2", "x"), "temperature"),
                         (("generate", "--system", "s", "x"), "--system needs --chat"),
                         (("models", "info", "abc"), "no registered model")):
        done = stillroom(*args, check=False)
        assert done.returncode != 0 and needle in done.stderr and "Traceback" not in done.stderr


def test_version_and_help(home: Path) -> None:
    assert "stillroom" in stillroom("--version").stdout
    assert "verify" in stillroom("log", "--help").stdout


def test_generate_in_a_subprocess_exits_0_and_logs_its_cpu_path(home: Path) -> None:
    """The first decode on this CPU, in its own process: a crash in llama.cpp would show as a signal here."""
    done = subprocess.run([sys.executable, "-m", "app", "generate", "--max-tokens", "6", "--seed", "1", "The sky is"],
                          capture_output=True, text=True, env=os.environ.copy(), cwd=REPO, timeout=180)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    row = json.loads(stillroom("log", "show", "1", "--json").stdout)
    backend = row["runtime"]["cpu_backend"]
    assert backend["amx_path_avoided"] is True
    assert backend["isa"] in ("AVX512", "AVX2", "AVX", "NEON", "SVE"), backend
    assert backend["build_features"] and backend["cpu_flags"] is not None
    assert isinstance(backend["use_extra_bufts"], bool)
