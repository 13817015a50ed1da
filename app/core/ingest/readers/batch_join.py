"""The join of an OpenAI Batch API output file with its input file, by custom_id.

The input file is scanned once for where each custom_id's line starts (an offset, not the line);
a request is read back from disk when its result comes up, so neither file is held in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from app.core.cancel import NEVER, CancelToken
from app.core.ingest.containers import UTF8_BOM, Issue, parse_json_text, read_lines
from app.core.ingest.errors import RecordError
from app.core.ingest.records import ImportedRecord
from app.core.ingest.readers.openai import parse_request

CANCEL_CHECK_LINES = 1000


class RequestIndex:
    """custom_id -> (line number, byte offset) of its request in a Batch API input file.

    Use build() (a generator yielding bytes read) before request_for(); close() when done.
    `issues` lists the input lines that could not be indexed.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        self.where: dict[str, tuple[int, int]] = {}
        self.used: set[str] = set()
        self.issues: list[Issue] = []
        self._handle: BinaryIO | None = None

    def build(self, cancel: CancelToken = NEVER) -> Iterator[int]:
        """Scan the input file, yielding the bytes read so far every CANCEL_CHECK_LINES lines;
        stops early (leaving the index partial) when `cancel` is set."""
        offset = 0
        with self.path.open("rb") as handle:
            for number, line in enumerate(read_lines(handle), 1):
                start = offset
                offset += len(line) if line is not None else 0
                if number % CANCEL_CHECK_LINES == 0:
                    if cancel.cancelled:
                        return
                    yield offset
                if line is None:
                    self.issues.append(Issue(number, "line", "the line is too long", self.name))
                    offset = handle.tell()
                    continue
                if number == 1 and line.startswith(UTF8_BOM):
                    line = line[len(UTF8_BOM):]
                if not line.strip():
                    continue
                custom_id = self._custom_id(number, line)
                if custom_id is None:
                    continue
                if custom_id in self.where:
                    first = self.where[custom_id][0]
                    self.issues.append(Issue(number, "line", f"custom_id {custom_id!r} repeats line {first}; "
                                                             "only the first is joined", self.name))
                    continue
                self.where[custom_id] = (number, start)
        yield offset

    def _custom_id(self, number: int, line: bytes) -> str | None:
        try:
            value = parse_json_text(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            message = "the line is not valid UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
            self.issues.append(Issue(number, "line", message, self.name))
            return None
        custom_id = value.get("custom_id") if isinstance(value, dict) else None
        if not isinstance(custom_id, str):
            self.issues.append(Issue(number, "line", "no custom_id string", self.name))
            return None
        return custom_id

    def mark_used(self, custom_id: object) -> None:
        """Count a result as matched without reading its request (a record skipped as imported)."""
        if isinstance(custom_id, str) and custom_id in self.where:
            self.used.add(custom_id)

    def request_for(self, custom_id: str) -> ImportedRecord | None:
        """The parsed request with this custom_id, None when the input has none; RecordError when
        that request is malformed."""
        found = self.where.get(custom_id)
        if found is None:
            return None
        self.used.add(custom_id)
        number, offset = found
        if self._handle is None:
            self._handle = self.path.open("rb")
        self._handle.seek(offset)
        line = self._handle.readline()
        if number == 1 and line.startswith(UTF8_BOM):
            line = line[len(UTF8_BOM):]
        try:
            value = parse_json_text(line.decode("utf-8"))
            if not isinstance(value, dict) or "body" not in value:
                raise RecordError('no "body" field')
            request = parse_request(value["body"], value.get("url"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise RecordError(f"its request ({self.name} line {number}) cannot be read: {exc}") from exc
        request.origin = {"request_record": number, "url": value.get("url")}
        return request

    @property
    def unmatched(self) -> int:
        """Requests of the input file with no result in the output file (so far)."""
        return len(self.where) - len(self.used)

    def close(self) -> None:
        """Close the input file."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
