"""Checkpoints a verifier has seen, per signing key and log, and the consistency of newer ones.

As Go's checksum-database client does: the first checkpoint met from a log is remembered (trust on
first use); a later one of a bigger tree is accepted only with a consistency proof that it extends
the biggest one remembered (carried by the statement, or given as the output of the publisher's
`stillroom log consistency OLD NEW`); two different roots for one size signed by the same key are a
fork, reported loudly and never remembered. Kept in `checkpoints-seen.json` in the data folder.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app.core.errors import StillroomError
from app.core.json_store import read_section, write_section
from app.core.safetext import quote
from app.core.store.checkpoint import CONSISTENCY_HEADER, Checkpoint, ProofError, check_consistency_text

SEEN_FILE = "checkpoints-seen.json"
MAX_SIZES_KEPT = 1000
MAX_CANDIDATE_PROOFS = 32


class SeenError(StillroomError):
    """The file of seen checkpoints cannot be read or written."""


@dataclass(frozen=True)
class Meeting:
    """What meeting a checkpoint showed: ok, whether it is a fork, and a sentence."""

    ok: bool
    fork: bool
    detail: str


def seen_path() -> Path:
    """`checkpoints-seen.json` in the data folder."""
    from app.core.paths import data_dir

    return data_dir() / SEEN_FILE


def _b64(root: bytes) -> str:
    return base64.b64encode(root).decode("ascii")


class CheckpointsSeen:
    """The remembered checkpoints: {key fingerprint: {origin: {str(size): {root, first_seen}}}}."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.keys: dict[str, dict[str, dict[str, dict[str, str]]]] = self._read()

    def _read(self) -> dict[str, Any]:
        return read_section(self.path, "keys", "checkpoints seen", SeenError)

    def sizes(self, keyid: str, origin: str) -> dict[int, bytes]:
        """Size -> root of every checkpoint remembered for this key and log."""
        out: dict[int, bytes] = {}
        for size, entry in (self.keys.get(keyid, {}).get(origin) or {}).items():
            try:
                out[int(size)] = base64.b64decode(str(entry.get("root", "")), validate=True)
            except (ValueError, binascii.Error, AttributeError):
                continue
        return out

    def meet(self, keyid: str, checkpoint: Checkpoint, proofs: list[str]) -> Meeting:
        """Compare a checkpoint whose signature was checked with those seen under `keyid`; remember
        it when it is consistent. `proofs` are consistency proof texts that may lead to it."""
        seen = self.sizes(keyid, checkpoint.origin)
        log = quote(checkpoint.origin, 80)
        if checkpoint.size in seen:
            if seen[checkpoint.size] == checkpoint.root:
                return Meeting(True, False, f"the same checkpoint of log {log} ({checkpoint.size} rows) was seen before")
            return Meeting(False, True, f"FORK: log {log} signed two different trees of {checkpoint.size} rows with "
                           f"this key (root {_b64(seen[checkpoint.size])} seen before, {_b64(checkpoint.root)} now): "
                           "the publisher rewrote its history or shows different histories to different people")
        if not seen:
            self._remember(keyid, checkpoint)
            return Meeting(True, False, f"first checkpoint seen from log {log} with this key: remembered "
                           f"({checkpoint.size} rows)")
        latest = max(seen)
        if checkpoint.size < latest:
            self._remember(keyid, checkpoint)
            return Meeting(True, False, f"older than the latest checkpoint seen from log {log} ({latest} rows); "
                           "its consistency with it is not checked")
        old = Checkpoint(checkpoint.origin, latest, seen[latest])
        tried = 0
        for text in proofs[:MAX_CANDIDATE_PROOFS]:
            if not text.startswith(f"{CONSISTENCY_HEADER}\nold {latest} "):
                continue
            tried += 1
            try:
                check_consistency_text(text, old, checkpoint)
            except ProofError as exc:
                return Meeting(False, True, f"FORK or altered proof: the checkpoint of {checkpoint.size} rows does not "
                               f"extend the one of {latest} rows seen before from log {log} ({exc})")
            self._remember(keyid, checkpoint)
            return Meeting(True, False, f"extends the checkpoint of {latest} rows seen before from log {log} "
                           "(consistency proof checked)")
        return Meeting(False, False, f"newer than the checkpoint of {latest} rows seen before from log {log}, and no "
                       f"consistency proof from {latest} rows was given: ask the publisher for `stillroom log "
                       f"consistency {latest} {checkpoint.size}` and pass it with --consistency FILE")

    def _remember(self, keyid: str, checkpoint: Checkpoint) -> None:
        log = self.keys.setdefault(keyid, {}).setdefault(checkpoint.origin, {})
        log[str(checkpoint.size)] = {"root": _b64(checkpoint.root),
                                     "first_seen": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        if len(log) > MAX_SIZES_KEPT:
            for size in sorted(log, key=int)[:len(log) - MAX_SIZES_KEPT]:
                del log[size]
        self._write()

    def _write(self) -> None:
        write_section(self.path, "keys", self.keys, "cannot remember the checkpoint", SeenError)
