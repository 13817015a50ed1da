"""Owner-only files and folders (checked under a permissive umask), secrets never stored in clear,
and the offline switches set by the app's startup."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.paths import data_dir, models_dir
from app.core.privacy import OFFLINE_ENV, apply_offline_env, create_private_file, offline_env_problems
from app.core.provenance.signing import KEYS_SUBDIR, PRIVATE_KEY_FILE, load_or_create_key
from app.core.serve.api_keys import create_key
from app.core.store import Ledger
from tests.core.records import record

REPO = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """022, the usual default: files would be 0644 and folders 0755 unless Stillroom says otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "new" / "Stillroom"
    monkeypatch.setenv("STILLROOM_HOME", str(path))
    return path


def test_data_and_models_folders_are_created_0700(fresh_home: Path) -> None:
    assert data_dir() == fresh_home
    assert mode(fresh_home) == 0o700
    assert mode(models_dir()) == 0o700


def test_ledger_and_its_wal_and_shm_are_0600(fresh_home: Path) -> None:
    ledger = Ledger.open(data_dir() / "ledger.db")
    ledger.append_many([record(i) for i in range(1, 4)])
    files = [fresh_home / name for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm")]
    assert all(path.exists() for path in files)
    assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}
    ledger.close()


def test_api_keys_are_stored_hashed_in_the_owner_only_ledger(fresh_home: Path) -> None:
    path = data_dir() / "ledger.db"
    ledger = Ledger.open(path)
    _, secret = create_key(ledger.db, "laptop", "evals")
    ledger.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ledger.close()
    assert secret.encode() not in path.read_bytes()
    assert mode(path) == 0o600


def test_provenance_signing_key_is_0600_in_a_0700_folder(fresh_home: Path) -> None:
    load_or_create_key()
    folder = data_dir() / KEYS_SUBDIR
    assert mode(folder) == 0o700
    assert mode(folder / PRIVATE_KEY_FILE) == 0o600


def test_create_private_file_keeps_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "settings.ini"
    create_private_file(target)
    assert mode(target) == 0o600 and target.read_bytes() == b""
    target.write_text("[model]\nn_ctx=2048\n")
    create_private_file(target)
    assert target.read_text() == "[model]\nn_ctx=2048\n"


def test_apply_offline_env_overrides_a_shell_that_allows_downloads() -> None:
    env = {"HF_HUB_OFFLINE": "0", "DO_NOT_TRACK": "0", "PATH": "/bin"}
    changed = apply_offline_env(env)
    assert env["HF_HUB_OFFLINE"] == "1" and env["DO_NOT_TRACK"] == "1" and env["PATH"] == "/bin"
    assert set(changed) == set(OFFLINE_ENV)
    assert offline_env_problems(env) == []
    assert apply_offline_env(env) == {}


def test_stillroom_startup_sets_the_switches_before_any_library(tmp_path: Path) -> None:
    """The real entry point, with a shell that asks for the hub: by the time a command runs, every
    switch is set and no hub or transformers module has been imported."""
    probe = (
        "import os, sys, click\n"
        "from app.cli import main as m\n"
        "@click.command('probe')\n"
        "def probe():\n"
        "    bad = sorted(n for n in sys.modules if n.split('.')[0] in ('huggingface_hub', 'transformers', "
        "'sentence_transformers', 'torch'))\n"
        "    print(repr({k: os.environ.get(k) for k in %r}), bad)\n"
        "m.cli.add_command(probe)\n"
        "sys.argv = ['stillroom', 'probe']\n"
        "from app.__main__ import main\n"
        "main()\n" % (sorted(OFFLINE_ENV),)
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "STILLROOM_HOME": str(tmp_path)}
    env.pop("HF_HUB_DISABLE_TELEMETRY", None)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{dict(sorted(OFFLINE_ENV.items()))!r} []"
