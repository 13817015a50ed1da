"""Files Stillroom writes for the user: exports, batch outputs, cached projections.

Each is written to a temporary file made with ``mkstemp`` in the target folder (a fresh, unguessable
name opened with O_EXCL, so a symbolic link planted at a predictable name such as ``<out>.partial``
is never followed), flushed to disk, then renamed over the target. A reader, or a process killed
half-way, sees the old file or the whole new one. Files holding prompts and responses are created
owner-only (0600) unless the caller asks otherwise.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from app.core.privacy import PRIVATE_FILE_MODE

TEMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def replace_file(path: Path, binary: bool = False, mode: int = PRIVATE_FILE_MODE,
                 newline: str | None = None) -> Iterator[IO[Any]]:
    """Open a new temporary file beside `path` for writing; on a clean exit it is fsynced and renamed
    to `path` (replacing what was there), on an exception it is removed and `path` is untouched.

    `mode` is the permission of the new file (owner-only by default); the folder must exist.
    """
    folder = path.parent
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=folder)
    try:
        try:
            os.fchmod(fd, mode)
        except BaseException:
            os.close(fd)
            raise
        if binary:
            handle: IO[Any] = os.fdopen(fd, "wb")
        else:
            handle = os.fdopen(fd, "w", encoding="utf-8", newline=newline)
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


__all__ = ["replace_file"]
