"""Fault injection for the ledger tests: another process holding the write lock, a size-limited
file system (tmpfs, where this process may mount one), and running a snippet as an unprivileged
user (file permissions do not stop root)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
UNPRIVILEGED_UID = 65534  # nobody
HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
conn.close()
"""


@contextlib.contextmanager
def lock_held_by_another_process(path: Path) -> Iterator[subprocess.Popen[str]]:
    """A second process holds BEGIN EXCLUSIVE on the database at `path` until the block ends."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        if holder.poll() is None:
            assert holder.stdin is not None
            holder.stdin.write("\n")
            holder.stdin.flush()
            holder.wait(timeout=30)
        holder.stdin.close()  # type: ignore[union-attr]
        holder.stdout.close()  # type: ignore[union-attr]


def can_mount() -> bool:
    """True when this process may mount a tmpfs (root on Linux)."""
    return sys.platform.startswith("linux") and os.geteuid() == 0 and shutil.which("mount") is not None


@contextlib.contextmanager
def small_filesystem(size_kib: int) -> Iterator[Path]:
    """A tmpfs of `size_kib` KiB mounted on a fresh folder (a disk that fills up for real)."""
    folder = Path(tempfile.mkdtemp(prefix="stillroom-full-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0700", "tmpfs", str(folder)],
                   check=True, capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)
        folder.rmdir()


def remount(folder: Path, options: str) -> None:
    """Change a mounted tmpfs's options (size=..., ro, rw)."""
    subprocess.run(["mount", "-o", f"remount,{options}", str(folder)], check=True, capture_output=True)


@contextlib.contextmanager
def shared_folder() -> Iterator[Path]:
    """A folder an unprivileged child can use (tmp_path lies under a root-only folder)."""
    folder = Path(tempfile.mkdtemp(prefix="stillroom-perm-"))
    try:
        yield folder
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chmod", "-R", "u+rwx", str(folder)], check=False)
        shutil.rmtree(folder, ignore_errors=True)


def run_as_user(action: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run `action(*args)` as an unprivileged user when we are root (in a forked child, since the
    interpreter may live where that user cannot read), so that file permissions apply; otherwise
    in this process. Returns what `action` returns (JSON-able)."""
    if os.geteuid() != 0:
        return action(*args)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges, run, report, never return into pytest
        code = 1
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(UNPRIVILEGED_UID)
            os.setuid(UNPRIVILEGED_UID)
            payload = {"result": action(*args)}
            code = 0
        except BaseException as exc:  # noqa: BLE001 - handed to the parent
            payload = {"error": f"{type(exc).__name__}: {exc}"}
        with os.fdopen(write, "w") as out:
            out.write(json.dumps(payload))
        os._exit(code)
    os.close(write)
    with os.fdopen(read) as source:
        answer = json.loads(source.read() or "{}")
    os.waitpid(pid, 0)
    assert "result" in answer, answer
    return answer["result"]


def give_to_child(folder: Path) -> None:
    """Hand `folder` (and what is in it) to the unprivileged child user when we are root."""
    if os.geteuid() == 0:
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
