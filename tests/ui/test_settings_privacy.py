"""settings.ini is owner-only, from creation through QSettings' atomic rewrites."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from app.core.models.runner import LoadOptions
from app.ui.settings import SETTINGS_FILE, AppSettings


def test_settings_file_is_0600_after_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STILLROOM_HOME", str(tmp_path / "home"))
    previous = os.umask(0o022)
    try:
        settings = AppSettings()
        settings.theme = "dark"
        settings.set_load_options(LoadOptions(n_ctx=2048, n_gpu_layers=4))
        settings.sync()
        again = AppSettings()
        again.system_prompt = "Be brief."
        again.sync()
    finally:
        os.umask(previous)
    path = tmp_path / "home" / SETTINGS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert AppSettings().load_options().n_gpu_layers == 4 and AppSettings().system_prompt == "Be brief."
    assert stat.S_IMODE((tmp_path / "home").stat().st_mode) == 0o700
