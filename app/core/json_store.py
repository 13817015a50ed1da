"""Small JSON files Stillroom keeps in the data folder (remembered publishers, checkpoints seen):
`{"version": N, "<section>": {...}}`, read with a size bound and written whole through
outfiles.replace_file (mkstemp beside the file, renamed over it, 0600), so a crash mid-write never
leaves half a file and another user cannot read what a verifier remembered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.core.errors import StillroomError
from app.core.outfiles import replace_file

MAX_FILE_BYTES = 8 * 1024 * 1024
FILE_MODE = 0o600
FORMAT_VERSION = 1


def read_section(path: Path, section: str, what: str, error: type[StillroomError]) -> dict[str, Any]:
    """The `section` object of the file at `path` ({} when there is no file). `what` names the file
    for people ("remembered publishers"); any problem raises `error` with the path and the reason."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc})") from exc
    if size > MAX_FILE_BYTES:
        raise error(f"{path}: {size} bytes, too large to be a file of {what}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path}: not a readable file of {what} ({exc}); fix or remove it") from exc
    content = data.get(section) if isinstance(data, dict) else None
    if not isinstance(content, dict):
        raise error(f"{path}: not a file of {what} (no \"{section}\" object)")
    return content


def write_section(path: Path, section: str, content: dict[str, Any], failed: str,
                  error: type[StillroomError]) -> None:
    """Replace the file at `path` with `content` under `section`; `failed` says what could not be
    done ("cannot remember the checkpoint") in the `error` raised if writing fails."""
    text = json.dumps({"version": FORMAT_VERSION, section: content}, indent=2, sort_keys=True,
                      ensure_ascii=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replace_file(path, mode=FILE_MODE) as handle:
            handle.write(text)
    except OSError as exc:
        raise error(f"{path}: {failed} ({exc.strerror or exc})") from exc
