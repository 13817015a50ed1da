"""What an earlier import of the same file (or the same llm log) already wrote to the ledger.

Rows of a file are recognized by meta.import.file_sha256 + meta.import.record; rows of an llm
logs.db by llm's response id (meta.import.llm_id), so a logs.db that grew since is continued.
A record's rows are always committed together, so a position present means the record is done.
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from app.core.ingest.containers import RawRecord
from app.core.ingest.readers.llm_logs import LLM_ID_KEY
from app.core.store.db import translate_errors
from app.core.store.schema import GENERATIONS_TABLE

LLM_FORMAT = "llm-logs"


class AlreadyImported:
    """Membership test for records already in the ledger: positions of this file, or llm ids."""

    def __init__(self, positions: set[int], llm_ids: set[str], by_llm_id: bool) -> None:
        self.positions = positions
        self.llm_ids = llm_ids
        self.by_llm_id = by_llm_id

    @classmethod
    def load(cls, db: Database, file_sha256: str, fmt: str) -> AlreadyImported:
        """Read the import rows of the ledger that came from this file (or this llm log)."""
        if fmt == LLM_FORMAT:
            needle, path, where = f'"format":"{LLM_FORMAT}"', f"$.import.{LLM_ID_KEY}", "$.import.format"
            wanted: Any = LLM_FORMAT
        else:
            needle, path, where = f'"file_sha256":"{file_sha256}"', "$.import.record", "$.import.file_sha256"
            wanted = file_sha256
        # instr() narrows to the candidate rows cheaply; json_valid() keeps a tampered row from
        # failing the query (verify reports it).
        sql = (f"SELECT CASE WHEN json_valid(meta) AND json_extract(meta, ?) = ? THEN json_extract(meta, ?) END "
               f"FROM {GENERATIONS_TABLE} WHERE source = 'import' AND instr(meta, ?) > 0")
        with translate_errors(db.conn.execute("PRAGMA database_list").fetchone()[2]):
            values = [v for (v,) in db.execute(sql, [where, wanted, path, needle]).fetchall() if v is not None]
        if fmt == LLM_FORMAT:
            return cls(set(), {str(v) for v in values}, True)
        return cls({v for v in values if isinstance(v, int)}, set(), False)

    def __contains__(self, record: RawRecord) -> bool:
        if self.by_llm_id:
            value = record.value
            llm_id = value.get("id") if isinstance(value, dict) else None
            return llm_id is not None and str(llm_id) in self.llm_ids
        return record.position in self.positions

    def __len__(self) -> int:
        return len(self.llm_ids) if self.by_llm_id else len(self.positions)
