"""Streaming reader of CSV and TSV files with a header row (see containers.py for the protocol)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from app.core.ingest.containers import MAX_RECORD_BYTES, UTF8_BOM, Issue, RawRecord, Source, read_lines

_SURROGATE = re.compile("[\udc80-\udcff]")


def header_delimiter(line: str, suffix: str) -> str:
    """The delimiter of a CSV/TSV file: tab for .tsv, else the most frequent of , ; | tab in the header."""
    if suffix == ".tsv":
        return "\t"
    counts = {sep: line.count(sep) for sep in (",", "\t", ";", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


class CsvSource(Source):
    """CSV or TSV with a header row; each data row becomes {column: text}. A row with the wrong
    number of fields or bad UTF-8 costs only itself."""

    unit = "row"

    def __init__(self, path: Path, delimiter: str) -> None:
        super().__init__(path)
        self.delimiter = delimiter

    def __iter__(self) -> Iterator[RawRecord | Issue]:
        limit = csv.field_size_limit()
        csv.field_size_limit(MAX_RECORD_BYTES)
        try:
            with self.path.open("rb") as handle:
                yield from self._rows(handle)
        finally:
            csv.field_size_limit(limit)

    def _lines(self, handle: BinaryIO) -> Iterator[str]:
        for number, line in enumerate(read_lines(handle, self._count), 1):
            if line is None:
                yield "\udcff\n"  # marks the row as not readable (see _rows)
                continue
            if number == 1 and line.startswith(UTF8_BOM):
                line = line[len(UTF8_BOM):]
            yield line.decode("utf-8", "surrogateescape")

    def _count(self, size: int) -> None:
        self.done += size

    def _rows(self, handle: BinaryIO) -> Iterator[RawRecord | Issue]:
        reader = csv.reader(self._lines(handle), delimiter=self.delimiter)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            yield Issue(0, "line", f"the header row is not valid CSV ({exc})")
            return
        if header is None:
            return
        if any(_SURROGATE.search(name) for name in header):
            yield Issue(0, "line", "the header row is not valid UTF-8")
            return
        columns = [name.strip() for name in header]
        number = 0
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                number += 1
                yield Issue(number, self.unit, f"invalid CSV ({exc})")
                continue
            if not fields or fields == [""] and len(columns) > 1:
                continue  # a blank line
            number += 1
            if len(fields) != len(columns):
                yield Issue(number, self.unit, f"{len(fields)} fields where the header has {len(columns)} "
                                               f"(line {reader.line_num})")
            elif any(_SURROGATE.search(text) for text in fields):
                yield Issue(number, self.unit, f"not valid UTF-8, or a line over {MAX_RECORD_BYTES >> 20} MiB "
                                               f"(line {reader.line_num})")
            else:
                yield RawRecord(number, dict(zip(columns, fields)))
