"""Dataset and log readers: import OpenAI chat-messages and Batch API files, ShareGPT, Alpaca,
prompt/response JSONL or CSV, and simonw/llm's logs.db into the ledger (source `import`).

Qt-free. The entry point is the generator `import_file` (see importer.py for what is written
when, including on cancel); `detect` tells a file's format without writing anything.
"""

from app.core.ingest.containers import Issue
from app.core.ingest.errors import ImportFileError, ImportFormatError
from app.core.ingest.formats import FORMAT_NAMES, FORMATS, Detected, detect
from app.core.ingest.importer import ImportProgress, ImportSummary, import_file, run_import

__all__ = [
    "Detected", "FORMATS", "FORMAT_NAMES", "ImportFileError", "ImportFormatError", "ImportProgress",
    "ImportSummary", "Issue", "detect", "import_file", "run_import",
]
