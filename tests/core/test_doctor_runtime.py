"""The doctor's runtime checks: the CPU path, and a real generation in a child process, which
passes here and, when the child really crashes, is reported with its signal and the fix."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from app.core.doctor import FAIL, OK, format_check
from app.core.doctor_runtime import cpu_path_check, generation_check
from app.core.models.cpu_backend import EXTRA_BUFFERS_ENV

# A null-pointer read in native code: a genuine segmentation fault, as llama.cpp's AMX path makes one.
SEGFAULT = "import ctypes; ctypes.string_at(0)"
ILLEGAL_INSTRUCTION = "import os, signal; os.kill(os.getpid(), signal.SIGILL)"


def test_a_real_generation_passes_here(home: Path) -> None:
    started = time.perf_counter()
    check = generation_check(home)
    elapsed = time.perf_counter() - started
    assert check.status == OK, format_check(check)
    assert check.data["returncode"] == 0 and check.data["signal"] is None
    result = check.data["result"]
    assert result["status"] == "ok" and result["completion_tokens"] >= 1
    assert result["model"] == str(home / "models" / "gemma-3-270m-q4_k_m.gguf")  # the data folder's, not a copy
    assert "extra buffer types" in result["cpu_path"]
    print(f"generation check: {elapsed:.1f} s")


def test_a_segfault_is_reported_with_its_signal_and_fix(home: Path) -> None:
    check = generation_check(home, command=[sys.executable, "-c", SEGFAULT])
    assert check.status == FAIL
    assert check.data["signal"] == "SIGSEGV" and check.data["returncode"] == -11
    assert "SIGSEGV" in check.detail
    assert "make clean-venv setup" in (check.fix or "") and f"{EXTRA_BUFFERS_ENV}=0" in (check.fix or "")
    text = format_check(check)
    assert text.startswith("FAIL  Generation:") and "\n      fix: rebuild llama.cpp without AMX" in text


def test_an_illegal_instruction_says_the_build_is_for_another_cpu(home: Path) -> None:
    check = generation_check(home, command=[sys.executable, "-c", ILLEGAL_INSTRUCTION])
    assert check.status == FAIL and check.data["signal"] == "SIGILL" and "SIGILL" in check.detail
    assert "another CPU" in (check.fix or "")


def test_an_error_exit_and_a_hang_are_failures_too(home: Path) -> None:
    error = generation_check(home, command=[sys.executable, "-c", "import sys; sys.exit('no model here')"])
    assert error.status == FAIL and "exit status 1" in error.detail and "no model here" in error.detail
    hang = generation_check(home, command=[sys.executable, "-c", "import time; time.sleep(60)"], timeout=1)
    assert hang.status == FAIL and hang.data["timed_out"] is True and "did not finish" in hang.detail


def test_cpu_path_names_the_features_the_variant_and_the_amx_decision() -> None:
    check = cpu_path_check()
    assert check.status in (OK, "warn"), format_check(check)
    assert check.data["amx_path_avoided"] is True
    assert ("AMX path avoided" in check.detail) and "extra buffer types" in check.detail
    assert check.data["build_features"], "llama.cpp's build features are listed"
    if sys.platform.startswith("linux"):
        assert check.data["cpu_flags"], "the CPU's flags are listed"


def test_forcing_extra_buffers_off_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.models import cpu_backend

    monkeypatch.setenv(EXTRA_BUFFERS_ENV, "0")
    cpu_backend.current.cache_clear()
    try:
        check = cpu_path_check()
    finally:
        monkeypatch.delenv(EXTRA_BUFFERS_ENV)
        cpu_backend.current.cache_clear()
    assert "extra buffer types off" in check.detail and EXTRA_BUFFERS_ENV in check.detail
