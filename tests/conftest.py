"""Shared fixtures: a private data folder per test, and the real default model, assembled once."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app.core.audit.embed_export import EXPORT_SUBDIR  # noqa: E402
from app.core.models.default_model import default_model_path  # noqa: E402
from app.core.models.registry import ModelRecord, register_model  # noqa: E402
from app.core.models.runner import LoadOptions, Runner  # noqa: E402
from app.core.store import Ledger  # noqa: E402

TEST_N_CTX = 1024


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding the assembled and verified default model, shared by the session."""
    home = tmp_path_factory.mktemp("model-store")
    previous = os.environ.get("STILLROOM_HOME")
    os.environ["STILLROOM_HOME"] = str(home)
    try:
        ledger = Ledger.open(home / "ledger.db")
        default_model_path(ledger.db)
        ledger.close()
    finally:
        if previous is None:
            os.environ.pop("STILLROOM_HOME", None)
        else:
            os.environ["STILLROOM_HOME"] = previous
    return home / "models"


def make_home(path: Path, model_store: Path) -> Path:
    """A data folder at `path` with the default model hard-linked in (no copy)."""
    models = path / "models"
    models.mkdir(parents=True)
    for item in model_store.iterdir():
        try:
            os.link(item, models / item.name)
        except OSError:
            shutil.copy2(item, models / item.name)
    return path


@contextmanager
def running_server(home: Path, n_ctx: int = TEST_N_CTX) -> Iterator[tuple[object, Path]]:
    """The real local server on a free loopback port over `home`'s ledger (created if missing), with
    STILLROOM_HOME pointing at `home` while it runs; yields (StillroomServer, ledger path)."""
    from app.core.serve.server import StillroomServer

    ledger_file = home / "ledger.db"
    Ledger.open(ledger_file).close()
    previous = os.environ.get("STILLROOM_HOME")
    os.environ["STILLROOM_HOME"] = str(home)
    server = StillroomServer(ledger_file, None, port=0, options=LoadOptions(n_ctx=n_ctx, n_threads=2))
    try:
        server.start()
        yield server, ledger_file
    finally:
        server.stop()
        if previous is None:
            os.environ.pop("STILLROOM_HOME", None)
        else:
            os.environ["STILLROOM_HOME"] = previous


@pytest.fixture(scope="session")
def embedding_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the ONNX exports (float32 and int8) of the bundled MiniLM, made once for the
    session, so that each test's encoder (and each `stillroom` run in a test's home) loads them
    instead of exporting."""
    from app.core.audit.embed_backends import model_dir
    from app.core.audit.embed_export import FLOAT32, INT8, export_path, make_export, make_quantized

    folder = tmp_path_factory.mktemp("embedding-store")
    fp32 = make_export(model_dir(), export_path(model_dir(), folder, FLOAT32))
    make_quantized(model_dir(), fp32, export_path(model_dir(), folder, INT8))
    return folder


@pytest.fixture
def home(tmp_path: Path, model_store: Path, embedding_store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh STILLROOM_HOME for this test, with the default model and the embedding model's export
    hard-linked in (no copy)."""
    path = make_home(tmp_path / "stillroom-home", model_store)
    exports = path / EXPORT_SUBDIR
    exports.mkdir()
    for item in embedding_store.iterdir():
        os.link(item, exports / item.name)
    monkeypatch.setenv("STILLROOM_HOME", str(path))
    return path


@pytest.fixture
def ledger(home: Path) -> Iterator[Ledger]:
    """The test's ledger (home/ledger.db), open for writing."""
    opened = Ledger.open(home / "ledger.db")
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def default_model(model_store: Path, tmp_path_factory: pytest.TempPathFactory) -> ModelRecord:
    """The default model registered in a scratch ledger (its sha256 and GGUF metadata)."""
    scratch = Ledger.open(tmp_path_factory.mktemp("registry") / "ledger.db")
    path = next(p for p in model_store.iterdir() if p.suffix == ".gguf")
    record = register_model(scratch.db, path)
    scratch.close()
    return record


@pytest.fixture(scope="session")
def runner(default_model: ModelRecord) -> Iterator[Runner]:
    """The real default model loaded once for the session (core tests only; the GUI owns its own)."""
    loaded = Runner()
    loaded.load(default_model.sha256, default_model.info, LoadOptions(n_ctx=TEST_N_CTX, n_threads=2))
    yield loaded
    loaded.unload()


def _hypothesis_profiles() -> None:
    """CI runs the property tests derandomized, so a run is repeatable; locally they explore."""
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True)
    if os.environ.get("CI"):
        settings.load_profile("ci")


_hypothesis_profiles()
