"""Reading back what a server test logged: the rows of one workflow, on a read-only connection."""

from __future__ import annotations

from pathlib import Path

from app.core.store import open_db
from app.core.store.queries import LogFilter, list_generations


def rows(ledger_file: Path, workflow: str) -> list[dict]:
    """Every generation row logged under `workflow`."""
    db = open_db(ledger_file, readonly=True)
    try:
        return list_generations(db, LogFilter(workflow=workflow), limit=None)
    finally:
        db.close()
