"""Which format a file is in: the container from its first bytes and extension, then the record
shape from its first records. Detection reads at most DETECT_RECORDS records and writes nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from app.core.ingest.containers import UTF8_BOM, Issue, JsonLinesSource, JsonSource, RawRecord, Source, read_lines
from app.core.ingest.errors import ImportFileError, ImportFormatError, RecordError
from app.core.ingest.readers import READERS
from app.core.ingest.readers.datasets import PAIR_NAMES, pair_fields
from app.core.ingest.readers.ledger_export import is_ledger_row
from app.core.ingest.readers.ledger_markdown import MarkdownExportSource, is_markdown_export
from app.core.ingest.readers.llm_logs import LlmLogsSource, check_llm_logs
from app.core.ingest.records import ReadOptions, kind_of
from app.core.ingest.tabular import CsvSource, header_delimiter

FORMATS = tuple(READERS)
FORMAT_NAMES = {
    "openai-messages": "OpenAI chat messages",
    "openai-batch-input": "OpenAI Batch API input",
    "openai-batch-output": "OpenAI Batch API output",
    "sharegpt": "ShareGPT",
    "alpaca": "Alpaca",
    "pairs": "prompt/response pairs",
    "llm-logs": "simonw/llm logs.db",
    "stillroom-log": "Stillroom log export (JSON Lines)",
    "stillroom-markdown": "Stillroom log export (Markdown)",
}
EXPECTED = (
    "Stillroom imports JSON Lines, JSON or CSV records of OpenAI chat messages ({\"messages\": [...]}), "
    "OpenAI Batch API input ({\"custom_id\", \"body\"}) or output ({\"custom_id\", \"response\"}), "
    "ShareGPT ({\"conversations\": [{\"from\", \"value\"}]}), Alpaca ({\"instruction\", \"input\", \"output\"}) "
    f"or prompt/response pairs ({PAIR_NAMES}, or fields named by hand); Stillroom's own JSONL or Markdown log export; "
    "or simonw/llm's logs.db"
)
SQLITE_MAGIC = b"SQLite format 3\x00"
SNIFF_BYTES = 64 * 1024
SNIFF_LINES = 20
DETECT_RECORDS = 20
DETECT_ITEMS = 200  # records and issues looked at before giving up on finding DETECT_RECORDS
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonlines")


@dataclass(frozen=True)
class Detected:
    """A file's format and container (jsonl, json-array, json-stream, csv or sqlite)."""

    format: str
    container: str
    delimiter: str = ","

    def source(self, path: Path) -> Source:
        """A fresh reader of the file's records."""
        return open_source(path, self.container, self.delimiter)


def open_source(path: Path, container: str, delimiter: str = ",") -> Source:
    """The record reader for a container."""
    if container == "jsonl":
        return JsonLinesSource(path)
    if container in ("json-array", "json-stream"):
        return JsonSource(path, array=container == "json-array")
    if container == "csv":
        return CsvSource(path, delimiter)
    if container == "markdown":
        return MarkdownExportSource(path)
    return LlmLogsSource(path)


def sniff_container(path: Path) -> tuple[str, str]:
    """(container, CSV delimiter) from the first bytes and the extension; ImportFormatError if none fits."""
    try:
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if head.startswith(SQLITE_MAGIC):
        return "sqlite", ","
    if head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM):]
    if is_markdown_export(head):
        return "markdown", ","
    if not head.strip():
        raise ImportFormatError(f"{path}: the file is empty. {EXPECTED}.")
    if b"\x00" in head:
        raise ImportFormatError(f"{path}: a binary file, not text. {EXPECTED}.")
    text = head.decode("utf-8", "replace")
    first = text.lstrip()[:1]
    suffix = path.suffix.lower()
    if first == "[":
        return "json-array", ","
    if first == "{":
        return ("jsonl" if suffix in JSONL_SUFFIXES or _lines_are_json(path) else "json-stream"), ","
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    if suffix in (".csv", ".tsv") or any(sep in first_line for sep in (",", "\t")):
        return "csv", header_delimiter(first_line, suffix)
    raise ImportFormatError(f"{path}: neither JSON, JSON Lines, CSV nor an SQLite database. {EXPECTED}.")


def _lines_are_json(path: Path) -> bool:
    """True when one of the first non-blank lines is a whole JSON object on its own (JSON Lines)."""
    with path.open("rb") as handle:
        seen = 0
        for line in read_lines(handle):
            if line is None or not line.strip():
                continue
            seen += 1
            try:
                if isinstance(json.loads(line.decode("utf-8-sig")), dict):
                    return True
            except (ValueError, RecursionError):
                pass
            if seen >= SNIFF_LINES:
                return False
    return False


def classify(value: Any) -> str | None:
    """The format a single record looks like, or None; told from the fields that carry values
    (a field holding null or an empty list says nothing about the record's shape)."""
    if not isinstance(value, dict):
        return None
    if is_ledger_row(value):
        return "stillroom-log"
    carried = {key: item for key, item in value.items() if item is not None and item != [] and item != {}}
    if "custom_id" in carried:
        if "body" in carried:
            return "openai-batch-input"
        if "response" in carried or "error" in carried:
            return "openai-batch-output"
    if isinstance(carried.get("messages"), list):
        return "openai-messages"
    if isinstance(carried.get("conversations"), list) or isinstance(carried.get("conversation"), list):
        return "sharegpt"
    if "instruction" in carried and "output" in carried:
        return "alpaca"
    if pair_fields(carried) is not None:
        return "pairs"
    return None


def detect(path: Path, fmt: str = "auto", options: ReadOptions | None = None) -> Detected:
    """The file's format: `fmt` checked against the file, or found from it when "auto".

    Raises ImportFileError / ImportFormatError (naming the file and what was expected) when the
    file is missing, empty, of no known format, or none of its first records reads as `fmt`.
    """
    options = options or ReadOptions()
    if fmt != "auto" and fmt not in READERS:
        raise ValueError(f"unknown import format {fmt!r}; choose auto or one of {', '.join(FORMATS)}")
    if not path.exists():
        raise ImportFileError(f"{path}: no such file")
    if not path.is_file():
        raise ImportFileError(f"{path}: not a file")
    container, delimiter = sniff_container(path)
    if container == "sqlite":
        if fmt not in ("auto", "llm-logs"):
            raise ImportFormatError(f"{path}: an SQLite database, not {FORMAT_NAMES[fmt]}. {EXPECTED}.")
        check_llm_logs(path)
        fmt = "llm-logs"
    elif fmt == "llm-logs":
        raise ImportFormatError(f"{path}: not an SQLite database (simonw/llm's logs.db is one)")
    elif container == "markdown":
        if fmt not in ("auto", "stillroom-markdown"):
            raise ImportFormatError(f"{path}: a Stillroom Markdown log export, not {FORMAT_NAMES[fmt]}. {EXPECTED}.")
        fmt = "stillroom-markdown"
    elif fmt == "stillroom-markdown":
        raise ImportFormatError(f'{path}: not a Stillroom Markdown log export (it starts "# Stillroom ledger export")')
    elif fmt == "auto" and options.prompt_field:
        fmt = "pairs"
    sample = _sample(open_source(path, container, delimiter))
    records = [item for item in sample if isinstance(item, RawRecord)]
    if fmt == "auto":
        fmt = _majority(path, records, sample)
    reader = READERS[fmt]
    problems: list[str] = [str(item) for item in sample if isinstance(item, Issue)]
    for record in records:
        try:
            reader(record.value, options)
            return Detected(fmt, container, delimiter)
        except RecordError as exc:
            problems.append(f"{sample_unit(container)} {record.position}: {exc}")
    if not records and not problems:
        return Detected(fmt, container, delimiter)  # a well-formed file with no records
    raise ImportFormatError(
        f"{path}: none of its first {len(sample)} records reads as {FORMAT_NAMES[fmt]} "
        f"({problems[0] if problems else 'no records'}). {EXPECTED}.")


def sample_unit(container: str) -> str:
    """What a position counts in this container: line, record or row."""
    return {"jsonl": "line", "csv": "row", "sqlite": "row", "markdown": "generation"}.get(container, "record")


def _sample(source: Source) -> list[RawRecord | Issue]:
    """The first records (and issues) of a source, up to DETECT_RECORDS records."""
    items: list[RawRecord | Issue] = []
    found = 0
    iterator = iter(source)
    try:
        for item in islice(iterator, DETECT_ITEMS):
            items.append(item)
            found += isinstance(item, RawRecord)
            if found >= DETECT_RECORDS:
                break
    finally:
        close = getattr(iterator, "close", None)
        if close:
            close()
    return items


def _majority(path: Path, records: list[RawRecord], sample: list[RawRecord | Issue]) -> str:
    """The format most of the sampled records look like; ImportFormatError when none does."""
    votes = Counter(kind for kind in (classify(r.value) for r in records) if kind)
    if votes:
        best = max(votes.values())
        return next(name for name in FORMATS if votes.get(name) == best)
    if records:
        first = records[0].value
        if isinstance(first, dict):
            keys = ", ".join(repr(str(k))[1:-1] for k in list(first)[:12]) or "none"
            detail = f"its first record has the fields: {keys}"
        else:
            detail = f"its first record is {kind_of(first)}, not an object"
    elif sample:
        detail = f"no record could be read ({sample[0]})"
    else:
        detail = "it holds no records"
    raise ImportFormatError(f"{path}: not a format Stillroom can import: {detail}. {EXPECTED}.")


__all__ = ["Detected", "FORMATS", "FORMAT_NAMES", "classify", "detect", "sniff_container"]
