"""Reading a released dataset file: its format and shape, then its rows one at a time.

Formats: JSON Lines, JSON (one top-level array, or objects one after another), CSV/TSV and
Parquet. Shapes: prompt/response pairs (and their common synonyms), Alpaca
instruction/input/output, ShareGPT conversations and OpenAI chat messages; or fields named by hand.

The text formats reuse the import's streaming container readers (`app.core.ingest.containers`,
`tabular`) and its record readers for Alpaca, ShareGPT and OpenAI messages, so a row's prompt is
built exactly the way an imported record's is (Alpaca: the instruction, then a blank line and the
input when there is one; chats: the last user message). Parquet is read by record batches with
pyarrow. Nothing holds the whole file in memory.

A few hundred bytes of Parquet can declare millions of values (run-length and dictionary encoding),
so before any column is read its declared sizes are checked in every row group: at most
PARQUET_MAX_VALUES_PER_ROW values per row on average (a list column of one row holding millions of
entries) and PARQUET_MAX_CHUNK_BYTES uncompressed per column chunk; and a decoded batch larger than
PARQUET_MAX_BATCH_BYTES is refused. Each refusal is a DatasetError naming the row group and column.
JSON records nested deeper than the import's MAX_DEPTH become RowProblems.

A file that cannot be read at all raises DatasetError naming the problem; a malformed row becomes
a RowProblem with its position and reason and reading goes on.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from app.core.errors import StillroomError
from app.core.hashing import sha256_file
from app.core.ingest.containers import Issue, RawRecord
from app.core.ingest.errors import ImportFileError, RecordError
from app.core.ingest.formats import open_source, sniff_container
from app.core.provenance.shapes import (
    EXPECTED,
    FIELD_ROLES,
    KIND_NAMES,
    KINDS,
    PAIR_FIELDS,
    ShapeError,
    column_types,
    extract,
    shape_of,
)

FILE_FORMATS = ("jsonl", "json", "csv", "parquet", "markdown")
FORMAT_NAMES = {"jsonl": "JSON Lines", "json": "JSON", "csv": "CSV", "parquet": "Parquet",
                "markdown": "Stillroom Markdown log export"}
SAMPLE_RECORDS = 50
SAMPLE_ITEMS = 500
SNIFF_BYTES = 64 * 1024
PARQUET_MAGIC = b"PAR1"
PARQUET_BATCH = 2048
PARQUET_MAX_VALUES_PER_ROW = 10_000  # values of one column per row, averaged over a row group
PARQUET_MAX_CHUNK_BYTES = 2 << 30  # declared uncompressed bytes of one column in one row group
PARQUET_MAX_BATCH_BYTES = 512 << 20  # decoded bytes of one batch of rows
_UNITS = {"jsonl": "line", "json": "record", "csv": "row", "parquet": "row", "markdown": "generation"}


class DatasetError(StillroomError):
    """A dataset file that cannot be read at all: missing, empty, not UTF-8, not JSON, of no known shape."""


class ShapeUnknownError(DatasetError):
    """The file reads, but its records fit no known shape or the hand-named fields: `columns` are
    the field names it has, for naming the fields by hand."""

    def __init__(self, message: str, columns: tuple[str, ...]) -> None:
        super().__init__(message)
        self.columns = columns


@dataclass(frozen=True)
class DatasetShape:
    """What a dataset file holds and where each role's text is.

    fields maps a role (prompt, response, input, system, messages, conversations) to the field
    name in the file. container/delimiter say how to read a text file (the import's terms).
    """

    file_format: str
    kind: str
    fields: dict[str, str]
    columns: tuple[str, ...]
    column_types: dict[str, str]
    container: str = ""
    delimiter: str = ","

    def describe(self) -> str:
        """One line for people: format, shape and fields."""
        roles = ", ".join(f"{role} = {name}" for role, name in self.fields.items())
        return f"{FORMAT_NAMES.get(self.file_format, self.file_format)}, {KIND_NAMES.get(self.kind, self.kind)} ({roles})"


@dataclass
class DatasetRow:
    """One valid row: its 0-based position among the file's records, its prompt and response, and
    the values of any extra fields the reader was asked for (absent ones are None)."""

    index: int
    prompt: str
    response: str
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class RowProblem:
    """A malformed row: its 0-based position and why (the reason names the line or row)."""

    index: int
    reason: str


@dataclass
class RowReader:
    """Iterate for DatasetRow | RowProblem; `done`/`total` say how far it has read (in `unit`)."""

    path: Path
    shape: DatasetShape
    done: int = 0
    total: int | None = None
    unit: str = "bytes"
    extra_fields: tuple[str, ...] = ()
    _source: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.shape.file_format == "parquet":
            self.unit = "rows"
            self.total = _parquet_file(self.path).metadata.num_rows
        else:
            self.total = self.path.stat().st_size

    def __iter__(self) -> Iterator[DatasetRow | RowProblem]:
        shape = self.shape
        unit = _UNITS[shape.file_format]
        if shape.file_format == "parquet":
            records: Iterator[RawRecord | Issue] = self._parquet_records()
        else:
            self._source = open_source(self.path, shape.container, shape.delimiter)
            records = iter(self._source)
        for index, item in enumerate(records):
            if self._source is not None:
                self.done = self._source.done
            if isinstance(item, Issue):
                yield RowProblem(index, f"{item.unit} {item.position}: {item.message}")
                continue
            try:
                prompt, response = extract(item.value, shape.kind, shape.fields)
            except RecordError as exc:
                yield RowProblem(index, f"{unit} {item.position}: {exc}")
                continue
            value = item.value if isinstance(item.value, dict) else {}
            yield DatasetRow(index, prompt, response, {name: value.get(name) for name in self.extra_fields})
        if self._source is not None:
            self.done = self._source.done

    def _parquet_records(self) -> Iterator[RawRecord]:
        wanted = [name for name in (*self.shape.fields.values(), *self.extra_fields) if name in self.shape.columns]
        position = 0
        parquet = _parquet_file(self.path)
        check_parquet_bounds(parquet, self.path, wanted or None)
        batches = parquet.iter_batches(batch_size=PARQUET_BATCH, columns=wanted or None)
        while True:
            try:
                batch = next(batches, None)
            except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for damaged data
                raise DatasetError(f"{self.path}: the Parquet data cannot be read after row {position} ({exc})") from exc
            if batch is None:
                return
            _check_batch(batch, self.path, position)
            for value in batch.to_pylist():
                position += 1
                self.done = position
                yield RawRecord(position, value)


def iter_rows(path: Path | str, shape: DatasetShape,
              extra_fields: tuple[str, ...] = ()) -> Iterator[DatasetRow | RowProblem]:
    """Every row of the file in order, streamed: DatasetRow (with `extra_fields`' values in its
    extras), or RowProblem for a malformed one."""
    return iter(RowReader(Path(path), shape, extra_fields=tuple(extra_fields)))


def preview(path: Path | str, shape: DatasetShape, limit: int = 20) -> list[DatasetRow | RowProblem]:
    """The first `limit` rows (and problems) of the file."""
    return list(islice(iter_rows(path, shape), limit))


def file_sha256(path: Path | str) -> str:
    """sha256 hex of the file's bytes, read in chunks."""
    try:
        return sha256_file(path)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from exc


# -- detection -----------------------------------------------------------------------------


def detect_shape(path: Path | str, fields: dict[str, str] | None = None) -> DatasetShape:
    """The file's format and shape, found from its first records; `fields` (role -> field name)
    overrides what is detected. Raises DatasetError naming the problem when the file is missing,
    empty, not UTF-8, not JSON (for a .json/.jsonl file), or of no known shape."""
    path = Path(path)
    fields = {role: name for role, name in (fields or {}).items() if name}
    unknown = set(fields) - set(FIELD_ROLES)
    if unknown:
        raise DatasetError(f"unknown field role(s) {', '.join(sorted(unknown))}; use {', '.join(FIELD_ROLES)}")
    file_format, container, delimiter = _sniff(path)
    sample, columns, types = _sample(path, file_format, container, delimiter)
    try:
        kind, found = shape_of(sample, columns, fields)
    except ShapeError as exc:
        raise ShapeUnknownError(f"{path}: {exc}", columns) from exc
    return DatasetShape(file_format, kind, found, columns, types, container, delimiter)


def _sample(path: Path, file_format: str, container: str,
            delimiter: str) -> tuple[list[Any], tuple[str, ...], dict[str, str]]:
    if file_format == "parquet":
        return _parquet_sample(path)
    return _text_sample(path, file_format, container, delimiter)


def _sniff(path: Path) -> tuple[str, str, str]:
    """(file_format, container, delimiter); DatasetError when the file cannot be a dataset."""
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    if not path.is_file():
        raise DatasetError(f"{path}: not a file")
    try:
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not head.strip():
        raise DatasetError(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    if head.startswith(PARQUET_MAGIC) or suffix == ".parquet":
        return "parquet", "parquet", ","
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DatasetError(f"{path}: UTF-16 text, not UTF-8; save the file as UTF-8")
    first_line = head.lstrip(b" \t\r\n").split(b"\n", 1)[0]
    offset = len(head) - len(head.lstrip(b" \t\r\n"))
    try:  # a bad byte on the first line: the file is in another encoding (later ones cost their row)
        codecs.getincrementaldecoder("utf-8")().decode(first_line, final=len(first_line) < len(head) - offset)
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text (byte 0x{first_line[exc.start]:02x} at offset "
                           f"{offset + exc.start}); save the file as UTF-8") from exc
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if suffix in (".json", ".jsonl", ".ndjson", ".jsonlines") and text[:1] not in ("[", "{"):
        raise DatasetError(f"{path}: not JSON (it starts with {text[:20]!r}); {EXPECTED}")
    try:
        container, delimiter = sniff_container(path)
    except ImportFileError as exc:
        raise DatasetError(str(exc).split(". Stillroom imports")[0]) from exc
    if container == "sqlite":
        raise DatasetError(f"{path}: an SQLite database, not a dataset file (JSON Lines, JSON, CSV or Parquet)")
    file_format = {"jsonl": "jsonl", "csv": "csv", "markdown": "markdown"}.get(container, "json")
    return file_format, container, delimiter


def _text_sample(path: Path, file_format: str, container: str,
                 delimiter: str) -> tuple[list[Any], tuple[str, ...], dict[str, str]]:
    source = open_source(path, container, delimiter)
    records: list[Any] = []
    issues: list[Issue] = []
    iterator = iter(source)
    try:
        for item in islice(iterator, SAMPLE_ITEMS):
            if isinstance(item, Issue):
                issues.append(item)
            else:
                records.append(item.value)
                if len(records) >= SAMPLE_RECORDS:
                    break
    finally:
        iterator.close()  # type: ignore[attr-defined]
    if not records:
        if issues:
            message = issues[0].message
            what = ("not UTF-8 text" if "UTF-8" in message else
                    "not valid JSON" if file_format != "csv" and "JSON" in message else "not readable")
            raise DatasetError(f"{path}: {what}: none of its first records can be read ({issues[0]})")
        raise DatasetError(f"{path}: the file holds no records")
    columns: dict[str, None] = {}
    for value in records:
        if isinstance(value, dict):
            columns.update((str(key), None) for key in value)
    types = column_types(records, tuple(columns), csv=file_format == "csv")
    return records, tuple(columns), types


def _parquet_file(path: Path) -> Any:
    import pyarrow.parquet as pq  # noqa: PLC0415 - only Parquet files need pyarrow

    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise DatasetError(f"{path}: not a readable Parquet file ({exc})") from exc


def check_parquet_bounds(parquet: Any, path: Path, columns: list[str] | None = None) -> None:
    """DatasetError when a row group declares more than the limits above for one of `columns` (all
    when None): values per row, or uncompressed bytes of a column chunk."""
    metadata = parquet.metadata
    wanted = None if columns is None else set(columns)
    for group_index in range(metadata.num_row_groups):
        group = metadata.row_group(group_index)
        rows = max(1, group.num_rows)
        for column_index in range(group.num_columns):
            chunk = group.column(column_index)
            try:
                name = chunk.path_in_schema
            except (UnicodeDecodeError, ValueError) as exc:  # a damaged footer: pyarrow decodes names lazily
                raise DatasetError(f"{path}: row group {group_index + 1}, column {column_index + 1} has an "
                                   f"unreadable name ({exc}); not read") from exc
            if wanted is not None and name.split(".", 1)[0] not in wanted:
                continue
            where = f"{path}: row group {group_index + 1}, column {name!r}"
            if chunk.num_values > rows * PARQUET_MAX_VALUES_PER_ROW:
                raise DatasetError(f"{where} declares {chunk.num_values:,} values for {group.num_rows:,} rows "
                                   f"(more than {PARQUET_MAX_VALUES_PER_ROW:,} per row); not read")
            if chunk.total_uncompressed_size > PARQUET_MAX_CHUNK_BYTES:
                raise DatasetError(f"{where} declares {chunk.total_uncompressed_size:,} bytes uncompressed "
                                   f"(more than {PARQUET_MAX_CHUNK_BYTES >> 20} MiB); not read")


def _check_batch(batch: Any, path: Path, position: int) -> None:
    size = batch.nbytes
    if size > PARQUET_MAX_BATCH_BYTES:
        raise DatasetError(f"{path}: rows {position + 1}-{position + batch.num_rows} decode to {size >> 20} MiB "
                           f"(more than {PARQUET_MAX_BATCH_BYTES >> 20} MiB); not read")


def sample_records(path: Path | str, limit: int = SAMPLE_RECORDS) -> list[Any]:
    """The first records of a dataset file (at most `limit`), read with the same bounds as the rows;
    DatasetError when the file cannot be read."""
    path = Path(path)
    file_format, container, delimiter = _sniff(path)
    return _sample(path, file_format, container, delimiter)[0][:limit]


def _parquet_sample(path: Path) -> tuple[list[Any], tuple[str, ...], dict[str, str]]:
    import pyarrow as pa  # noqa: PLC0415

    parquet = _parquet_file(path)
    check_parquet_bounds(parquet, path)
    schema = parquet.schema_arrow
    columns = tuple(schema.names)
    types: dict[str, str] = {}
    for name in columns:
        kind = schema.field(name).type
        if pa.types.is_boolean(kind):
            types[name] = "boolean"
        elif pa.types.is_integer(kind):
            types[name] = "integer"
        elif pa.types.is_floating(kind):
            types[name] = "float"
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            types[name] = "text"
        else:
            types[name] = "json"
    sample: list[Any] = []
    try:
        for batch in parquet.iter_batches(batch_size=SAMPLE_RECORDS):
            _check_batch(batch, path, 0)
            sample = batch.to_pylist()
            break
    except DatasetError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DatasetError(f"{path}: the Parquet data cannot be read ({exc})") from exc
    if not sample:
        raise DatasetError(f"{path}: the file holds no records")
    return sample, columns, types


__all__ = [
    "DatasetError", "DatasetRow", "DatasetShape", "FILE_FORMATS", "KINDS", "PAIR_FIELDS", "RowProblem", "RowReader",
    "ShapeUnknownError",
    "check_parquet_bounds", "detect_shape", "file_sha256", "iter_rows", "preview", "sample_records",
]
