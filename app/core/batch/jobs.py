"""Batch jobs in the ledger database: their specs, their status, and which generations are done.

What is done is read from the ledger itself (rows whose meta names the job, item and sample, with
status ok), so a job resumed after a crash continues exactly where the committed rows stop.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from app.core.batch.spec import BatchSpec
from app.core.errors import NotFoundError
from app.core.store.db import translate_errors
from app.core.store.ledger import utc_now
from app.core.store.queries import decode_row
from app.core.store.schema import GENERATION_COLUMNS

STATUSES = ("created", "running", "paused", "cancelled", "done", "failed")


@dataclass(frozen=True)
class BatchJob:
    """A stored job."""

    id: int
    name: str
    workflow: str
    spec: BatchSpec
    output_path: str
    status: str
    total: int
    created_at: str
    updated_at: str
    error: str | None


def create_job(db: Database, spec: BatchSpec) -> BatchJob:
    """Store a new job (status created)."""
    now = utc_now()
    row = {"name": spec.name, "workflow": spec.workflow, "spec": spec.to_json(), "spec_sha256": spec.sha256(),
           "output_path": spec.output, "status": "created", "total": spec.total, "created_at": now,
           "updated_at": now, "error": None}
    with translate_errors(database_file(db)), db.conn:
        job_id = db["batch_jobs"].insert(row).last_pk
    return get_job(db, int(job_id))


def database_file(db: Database) -> str:
    """The file of the database `db` is connected to, for error messages."""
    return str(db.execute("PRAGMA database_list").fetchone()[2])


def get_job(db: Database, job_id: int) -> BatchJob:
    """A job by id; NotFoundError when there is none."""
    found = db.execute("SELECT id, name, workflow, spec, output_path, status, total, created_at, updated_at, error "
                       "FROM batch_jobs WHERE id = ?", [job_id]).fetchone()
    if found is None:
        raise NotFoundError(f"no batch job with id {job_id}")
    values = list(found)
    values[3] = BatchSpec.from_json(values[3])
    return BatchJob(*values)


def list_jobs(db: Database) -> list[BatchJob]:
    """All jobs, newest first."""
    ids = [row[0] for row in db.execute("SELECT id FROM batch_jobs ORDER BY id DESC").fetchall()]
    return [get_job(db, job_id) for job_id in ids]


def set_status(db: Database, job_id: int, status: str, error: str | None = None) -> None:
    """Record a job's status."""
    assert status in STATUSES
    with translate_errors(database_file(db)), db.conn:
        db.execute("UPDATE batch_jobs SET status = ?, error = ?, updated_at = ? WHERE id = ?",
                   [status, error, utc_now(), job_id])


def done_rows(db: Database, job_id: int) -> Iterator[dict[str, Any]]:
    """The job's successful generations, ordered by item and sample (first one wins)."""
    cursor = db.execute(
        f"SELECT {', '.join(GENERATION_COLUMNS)} FROM generations WHERE source = 'batch' AND status = 'ok' "
        "AND json_extract(meta, '$.batch.job') = ? "
        "ORDER BY json_extract(meta, '$.batch.item'), json_extract(meta, '$.batch.sample'), id", [job_id])
    seen: set[tuple[int, int]] = set()
    for values in cursor:
        row = decode_row(list(GENERATION_COLUMNS), values)
        key = (row["meta"]["batch"]["item"], row["meta"]["batch"]["sample"])
        if key not in seen:
            seen.add(key)
            yield row


def done_keys(db: Database, job_id: int) -> set[tuple[int, int]]:
    """(item, sample) pairs already generated successfully."""
    cursor = db.execute(
        "SELECT json_extract(meta, '$.batch.item'), json_extract(meta, '$.batch.sample') FROM generations "
        "WHERE source = 'batch' AND status = 'ok' AND json_extract(meta, '$.batch.job') = ?", [job_id])
    return {(int(item), int(sample)) for item, sample in cursor.fetchall()}


def output_line(row: dict[str, Any]) -> str:
    """One line of the job's output JSONL for a ledger row."""
    batch = row["meta"]["batch"]
    return json.dumps({"item": batch["item"], "sample": batch["sample"], "inputs": batch["inputs"],
                       "prompt": row["prompt"], "response": row["response"], "ledger_id": row["id"],
                       "seed": row["seed"], "model_sha256": row["model_sha256"]}, ensure_ascii=False)
