"""`python -m app` (the window) where the window cannot open: exit status 2 and one clear message,
before Qt loads its platform plugin (which would abort the process instead)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.qt_plugin_files import ABSENT_NAME, plugin_missing_a_library

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="Qt's plugins need system libraries on Linux")
REPO = Path(__file__).resolve().parents[2]
QT_VARIABLES = ("QT_QPA_PLATFORM", "QT_QPA_PLATFORM_PLUGIN_PATH", "DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE")


def start_window(home: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name not in QT_VARIABLES}
    env.update(STILLROOM_HOME=str(home), **extra)
    return subprocess.run([sys.executable, "-m", "app"], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_missing_system_library_exits_2_naming_the_packages(tmp_path: Path) -> None:
    plugins = plugin_missing_a_library(tmp_path / "qt")
    done = start_window(tmp_path / "home", DISPLAY=":97", QT_QPA_PLATFORM_PLUGIN_PATH=str(plugins))
    assert done.returncode == 2, done.stderr
    assert ABSENT_NAME in done.stderr
    assert "sudo apt-get install -y" in done.stderr and "libxcb-cursor0" in done.stderr
    assert "sudo dnf install -y" in done.stderr and "xcb-util-cursor" in done.stderr
    assert "could not load the Qt platform plugin" not in done.stderr  # Qt never got that far
    assert not (tmp_path / "home").exists()  # nothing was started


def test_no_display_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    done = start_window(tmp_path / "home")
    assert done.returncode == 2, done.stderr
    assert "no display" in done.stderr and "xvfb-run" in done.stderr
    assert "could not load the Qt platform plugin" not in done.stderr
