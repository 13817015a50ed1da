"""Publishers' keys remembered on first use, like SSH's known_hosts.

`stillroom verify` without `--key` can only say that *someone* signed a statement. The first time it
sees a statement whose signature verifies, it remembers the key under the publisher the statement
names (its declared creator) in `known-publishers.json` in the data folder; a later statement by the
same publisher is then checked against that key ("pinned: remembered"), and a different key is a
loud failure, never a silent update. Trust on first use: the first statement is not checked by
anything, which is why verify calls it "not pinned".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app.core.errors import StillroomError
from app.core.json_store import read_section, write_section

KNOWN_PUBLISHERS_FILE = "known-publishers.json"


class PublishersError(StillroomError):
    """The file of remembered publishers cannot be read or written."""


@dataclass(frozen=True)
class KnownKey:
    """A remembered key: its fingerprint and when and from which statement it was first seen."""

    publisher: str
    fingerprint: str
    first_seen: str
    first_statement: str


class KnownPublishers:
    """The remembered publishers in one JSON file: {publisher name: key entry}."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.entries: dict[str, dict[str, Any]] = self._read()

    def _read(self) -> dict[str, dict[str, Any]]:
        publishers = read_section(self.path, "publishers", "remembered publishers", PublishersError)
        return {str(name): entry for name, entry in publishers.items() if isinstance(entry, dict)}

    def lookup(self, publisher: str) -> KnownKey | None:
        """The key remembered for `publisher`, or None."""
        entry = self.entries.get(publisher)
        if entry is None:
            return None
        return KnownKey(publisher, str(entry.get("fingerprint", "")), str(entry.get("first_seen", "")),
                        str(entry.get("first_statement", "")))

    def remember(self, publisher: str, fingerprint: str, statement_name: str) -> KnownKey:
        """Remember `fingerprint` for a publisher not seen before (never replaces a remembered key)."""
        if publisher in self.entries:
            raise PublishersError(f"a key is already remembered for publisher {publisher!r}")
        entry = {"fingerprint": fingerprint,
                 "first_seen": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "first_statement": statement_name}
        self.entries[publisher] = entry
        self._write()
        return KnownKey(publisher, fingerprint, entry["first_seen"], statement_name)

    def _write(self) -> None:
        write_section(self.path, "publishers", self.entries, "cannot remember the publisher's key", PublishersError)


def known_publishers_path() -> Path:
    """`known-publishers.json` in the data folder."""
    from app.core.paths import data_dir

    return data_dir() / KNOWN_PUBLISHERS_FILE
