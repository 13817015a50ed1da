"""Streaming readers of the containers import files come in: JSON Lines and JSON (one array, or
objects one after another). CSV/TSV is in tabular.py, SQLite (llm's logs.db) in readers/llm_logs.py.

A source is iterated once and yields RawRecord(position, value) or Issue(position, ...) one record
at a time; none holds the file whole in memory. `done`/`total` tell how far it has read, in bytes.
Positions are 1-based: the line number in JSON Lines, the record index in JSON, the data row in CSV.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from app.core.cancel import NEVER, CancelToken

CHUNK_BYTES = 1 << 20
MAX_RECORD_BYTES = 64 << 20  # one record (a line, a JSON element) larger than this is refused
MAX_DEPTH = 64  # arrays and objects nested deeper than this in one record are refused
UTF8_BOM = b"\xef\xbb\xbf"
_LOOKAHEAD = 16  # characters from the end of the buffer where a JSON error may be a cut
_WHITESPACE = re.compile(r"[ \t\n\r]*")


@dataclass(frozen=True)
class RawRecord:
    """One record as read from the file, not yet checked against any format."""

    position: int
    value: Any


@dataclass(frozen=True)
class Issue:
    """A record that could not be imported: where it is and why."""

    position: int
    unit: str  # "line", "record" or "row"
    message: str
    file: str | None = None  # set for the second file of a joined import

    def __str__(self) -> str:
        where = f"{self.file} {self.unit}" if self.file else self.unit
        return f"{where} {self.position}: {self.message}"


class Source:
    """Base of the container readers: iterate for RawRecord | Issue; `done`/`total` in `unit`.
    `cancel` is checked by a reader that can block inside one read (SQLite); the caller sets it."""

    unit = "record"
    progress_unit = "bytes"
    cancel: CancelToken = NEVER

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done = 0
        self.total: int | None = path.stat().st_size

    def __iter__(self) -> Iterator[RawRecord | Issue]:
        """Yield each record of the file in order, as RawRecord, or Issue where one is unreadable."""
        raise NotImplementedError


def read_lines(handle: BinaryIO, on_bytes: Any = None) -> Iterator[bytes | None]:
    """The lines of a binary file (with their endings); None for a line longer than MAX_RECORD_BYTES,
    whose bytes are skipped without being held."""
    while True:
        line = handle.readline(MAX_RECORD_BYTES + 1)
        if not line:
            return
        if on_bytes:
            on_bytes(len(line))
        if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = handle.readline(CHUNK_BYTES)
                if on_bytes:
                    on_bytes(len(line))
            yield None
            continue
        yield line


def nesting_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply arrays and objects nest in `value` (a scalar is 0), counted without recursion and
    stopping at limit + 1."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def check_depth(value: Any) -> Any:
    """`value` itself; ValueError when it nests deeper than MAX_DEPTH."""
    if nesting_depth(value) > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels of arrays and objects")
    return value


def parse_json_text(text: str) -> Any:
    """json.loads with a message-bearing ValueError for the ways it fails besides bad syntax
    (nested too deeply for the parser, or deeper than MAX_DEPTH)."""
    try:
        return check_depth(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg} at column {exc.colno})") from exc
    except RecursionError as exc:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels of arrays and objects") from exc


class JsonLinesSource(Source):
    """One JSON value per line; blank lines are skipped, and a bad line costs only itself."""

    unit = "line"

    def __iter__(self) -> Iterator[RawRecord | Issue]:
        with self.path.open("rb") as handle:
            for number, line in enumerate(read_lines(handle, self._count), 1):
                if line is None:
                    yield Issue(number, self.unit, f"the line is longer than {MAX_RECORD_BYTES >> 20} MiB")
                    continue
                if number == 1 and line.startswith(UTF8_BOM):
                    line = line[len(UTF8_BOM):]
                if not line.strip():
                    continue
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError:
                    yield Issue(number, self.unit, "the line is not valid UTF-8")
                    continue
                try:
                    yield RawRecord(number, parse_json_text(text))
                except ValueError as exc:
                    yield Issue(number, self.unit, str(exc))

    def _count(self, size: int) -> None:
        self.done += size


class _Malformed(Exception):
    pass


class _Deep(Exception):
    """A whole record was read but nests too deeply: it costs only itself."""


class _TextBuffer:
    """Decoded text of a file read in growing chunks, with a cursor; consumed text is dropped."""

    def __init__(self, handle: BinaryIO, source: Source) -> None:
        self.handle = handle
        self.source = source
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.text = ""
        self.pos = 0
        self.eof = False

    def fill(self, size: int = CHUNK_BYTES) -> None:
        """Read `size` more bytes (raises UnicodeDecodeError on bad UTF-8)."""
        if self.eof:
            return
        data = self.handle.read(size)
        self.source.done += len(data)
        self.eof = not data
        self.text = self.text[self.pos:] + self.decoder.decode(data, final=self.eof)
        self.pos = 0

    def peek(self) -> str | None:
        """Skip white space; the next character, or None at the end of the file."""
        while True:
            self.pos = _WHITESPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.text):
                return self.text[self.pos]
            if self.eof:
                return None
            self.fill()

    def value(self, decoder: json.JSONDecoder) -> Any:
        """Decode the JSON value at the cursor, reading more of the file as long as it needs."""
        while True:
            try:
                value, end = decoder.raw_decode(self.text, self.pos)
                if end < len(self.text) or self.eof:
                    self.pos = end
                    if nesting_depth(value) > MAX_DEPTH:
                        raise _Deep(f"nested deeper than {MAX_DEPTH} levels of arrays and objects")
                    return value
                # It reaches the end of what is read: a number or the file may go on.
            except json.JSONDecodeError as exc:
                # An error well before the end of what is read cannot be fixed by reading more
                # (an unterminated string always runs to the end, so it can).
                settled = exc.pos < len(self.text) - _LOOKAHEAD and not exc.msg.startswith("Unterminated")
                if self.eof or settled:
                    raise _Malformed(f"invalid JSON ({exc.msg})") from exc
            except RecursionError as exc:
                raise _Malformed(f"nested deeper than {MAX_DEPTH} levels of arrays and objects") from exc
            pending = len(self.text) - self.pos
            if pending > MAX_RECORD_BYTES:
                raise _Malformed(f"invalid JSON or a record larger than {MAX_RECORD_BYTES >> 20} MiB")
            self.fill(max(CHUNK_BYTES, pending))  # doubling keeps re-parsing linear


class JsonSource(Source):
    """A JSON array of records (array=True), or JSON values one after another (pretty-printed
    JSON Lines, or a single object). After a structural error the rest cannot be located: it is
    reported as one issue and reading stops; what was read before stays good."""

    unit = "record"

    def __init__(self, path: Path, array: bool) -> None:
        super().__init__(path)
        self.array = array

    def __iter__(self) -> Iterator[RawRecord | Issue]:
        with self.path.open("rb") as handle:
            buffer = _TextBuffer(handle, self)
            index = 0
            try:
                for index, item in self._items(buffer):
                    yield item
            except UnicodeDecodeError:
                yield Issue(index + 1, self.unit, "the file is not valid UTF-8 from here on; the rest was not read")

    def _items(self, buffer: _TextBuffer) -> Iterator[tuple[int, RawRecord | Issue]]:
        decoder = json.JSONDecoder()
        index = 0
        if self.array:
            if buffer.peek() != "[":
                yield 0, Issue(1, self.unit, "expected a JSON array ('[') at the start of the file")
                return
            buffer.pos += 1
            if buffer.peek() == "]":
                buffer.pos += 1
                yield from self._trailing(buffer, 1)
                return
        while True:
            nxt = buffer.peek()
            if nxt is None:
                if self.array:
                    yield index, Issue(index + 1, self.unit, "the JSON array is not closed (the file ends early)")
                return
            index += 1
            try:
                yield index, RawRecord(index, buffer.value(decoder))
            except _Deep as exc:
                yield index, Issue(index, self.unit, str(exc))
            except _Malformed as exc:
                yield index, Issue(index, self.unit, f"{exc}; the rest of the file cannot be read")
                return
            if not self.array:
                continue
            nxt = buffer.peek()
            if nxt == ",":
                buffer.pos += 1
                if buffer.peek() == "]":  # a trailing comma is forgiven
                    nxt = "]"
            if nxt == "]":
                buffer.pos += 1
                yield from self._trailing(buffer, index + 1)
                return
            if nxt is None:
                yield index, Issue(index + 1, self.unit, "the JSON array is not closed (the file ends early)")
                return
            if nxt != ",":
                yield index, Issue(index + 1, self.unit,
                                   f"expected ',' or ']' after record {index}; the rest of the file cannot be read")
                return

    def _trailing(self, buffer: _TextBuffer, index: int) -> Iterator[tuple[int, Issue]]:
        if buffer.peek() is not None:
            yield index, Issue(index, self.unit, "unexpected text after the end of the JSON array")
