"""Where Stillroom keeps its data: platformdirs' user data folder, or STILLROOM_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from app.core.privacy import PRIVATE_DIR_MODE

HOME_ENV = "STILLROOM_HOME"
APP_NAME = "Stillroom"
LEDGER_FILE = "ledger.db"
MODELS_SUBDIR = "models"


def data_dir_path() -> Path:
    """Where the data folder is (STILLROOM_HOME, else platformdirs' user data folder), without creating it."""
    override = os.environ.get(HOME_ENV)
    return Path(override).expanduser() if override else Path(platformdirs.user_data_dir(APP_NAME, False))


def data_dir() -> Path:
    """The data folder, created owner-only if missing. STILLROOM_HOME overrides platformdirs."""
    path = data_dir_path()
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    return path


def ledger_path() -> Path:
    """The ledger database file, `ledger.db` in the data folder."""
    return data_dir() / LEDGER_FILE


def models_dir() -> Path:
    """The folder where the embedded default model is assembled."""
    path = data_dir() / MODELS_SUBDIR
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    return path
