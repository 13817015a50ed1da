"""One reader per import format: a function from one decoded record to the ImportedRecords it holds.

READERS maps a format name to its reader; each raises RecordError for a malformed record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.core.ingest.records import ImportedRecord, ReadOptions
from app.core.ingest.readers.datasets import read_alpaca, read_pairs, read_sharegpt
from app.core.ingest.readers.ledger_export import read_ledger_row
from app.core.ingest.readers.ledger_markdown import read_markdown_row
from app.core.ingest.readers.llm_logs import read_llm_row
from app.core.ingest.readers.openai import read_batch_input, read_batch_output, read_messages

Reader = Callable[[Any, ReadOptions], list[ImportedRecord]]

READERS: dict[str, Reader] = {
    "openai-messages": read_messages,
    "openai-batch-input": read_batch_input,
    "openai-batch-output": read_batch_output,
    "sharegpt": read_sharegpt,
    "alpaca": read_alpaca,
    "pairs": read_pairs,
    "llm-logs": read_llm_row,
    "stillroom-log": read_ledger_row,
    "stillroom-markdown": read_markdown_row,
}

__all__ = ["READERS", "Reader"]
