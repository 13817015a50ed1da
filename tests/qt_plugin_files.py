"""A real copy of Qt's xcb platform plugin that needs a system library no machine has.

The copy's dynamic section names `libxcb-cursor.so.9` instead of `libxcb-cursor.so.0` (one byte
changed in its string table, so the ELF file stays valid); every other library it needs resolves as
for the installed plugin (its RUNPATH, $ORIGIN/../../lib, points at PySide6's own Qt libraries).
Qt finds the copy through QT_QPA_PLATFORM_PLUGIN_PATH, as it would a plugin a user pointed it at.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from app.core.qt_platform import pyside_dir

REAL_NEEDED = b"\x00libxcb-cursor.so.0\x00"
ABSENT_NEEDED = b"\x00libxcb-cursor.so.9\x00"
ABSENT_NAME = "libxcb-cursor.so.9"


def plugin_missing_a_library(root: Path) -> Path:
    """Build the copy under `root`; returns the folder to put in QT_QPA_PLATFORM_PLUGIN_PATH."""
    pyside = pyside_dir()
    assert pyside is not None, "PySide6 is installed with the project"
    qt = pyside / "Qt"
    platforms = root / "plugins" / "platforms"
    platforms.mkdir(parents=True)
    (root / "lib").symlink_to(qt / "lib", target_is_directory=True)
    data = (qt / "plugins" / "platforms" / "libqxcb.so").read_bytes()
    assert data.count(REAL_NEEDED) == 1, "the xcb plugin names libxcb-cursor.so.0 once"
    (platforms / "libqxcb.so").write_bytes(data.replace(REAL_NEEDED, ABSENT_NEEDED))
    shutil.copymode(qt / "plugins" / "platforms" / "libqxcb.so", platforms / "libqxcb.so")
    return platforms
