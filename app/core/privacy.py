"""Privacy defaults: no network for the libraries Stillroom uses, owner-only files.

`apply_offline_env()` runs first thing at startup (app/__main__.py), before sentence-transformers,
transformers or huggingface_hub are imported, so none of them looks for updates, sends telemetry
or downloads anything. The embedding model and the default model come from installed packages.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, MutableMapping
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
_GROUP_OTHER_BITS = stat.S_IRWXG | stat.S_IRWXO

# Each library's own switch for "never touch the network" and "send no usage data".
OFFLINE_ENV: Mapping[str, str] = {
    "HF_HUB_OFFLINE": "1",               # huggingface_hub: no HTTP at all, local files only
    "HF_HUB_DISABLE_TELEMETRY": "1",     # huggingface_hub: no usage pings
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",  # never send a stored Hugging Face token
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_OFFLINE": "1",          # datasets (if ever imported by a dependency)
    "TRANSFORMERS_OFFLINE": "1",         # transformers: local files only
    "DO_NOT_TRACK": "1",                 # the cross-tool convention (consoledonottrack.com)
    "ANONYMIZED_TELEMETRY": "False",
    "GRADIO_ANALYTICS_ENABLED": "False",
}


def apply_offline_env(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set every variable of OFFLINE_ENV (overriding a value the user's shell set for other tools:
    Stillroom never goes online). Returns the variables that were changed."""
    env = os.environ if environ is None else environ
    changed: dict[str, str] = {}
    for name, value in OFFLINE_ENV.items():
        if env.get(name) != value:
            env[name] = value
            changed[name] = value
    return changed


def offline_env_problems(environ: Mapping[str, str] | None = None) -> list[str]:
    """Names of OFFLINE_ENV variables that are not set as they should be (empty when all are)."""
    env = os.environ if environ is None else environ
    return [name for name, value in OFFLINE_ENV.items() if env.get(name) != value]


def create_private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 if it does not exist (an existing file is left alone)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE_MODE))
    except FileExistsError:
        return


def write_atomically(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write `data` to `path` so that a reader (or a process killed half-way) sees either the old
    file or the whole new one, never a partial one: a temporary file beside it, fsync, rename.
    `mode` sets the permission bits before the data is written (e.g. PRIVATE_FILE_MODE); without it
    the file gets what a plain open() would give (0666 less the umask)."""
    import tempfile

    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(temp, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def is_owner_only(path: Path) -> bool:
    """True when neither group nor others have any permission on `path`."""
    return not (path.stat().st_mode & _GROUP_OTHER_BITS)


def mode_text(path: Path) -> str:
    """The permission bits of `path` as an octal string, e.g. '0600'."""
    return f"{stat.S_IMODE(path.stat().st_mode):04o}"
