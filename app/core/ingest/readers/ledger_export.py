"""Stillroom's own JSONL log export (`stillroom log export --format jsonl`): one ledger row a line.

A row read back keeps what the ledger recorded about the generation: mode, messages, system
prompt, prompt, response, model name, sampling parameters, seed, finish reason, token counts,
timings, status and the time it started. Where it came from (the exporting ledger's row id, uuid,
row hash, source and workflow) goes into the import's meta; the chain fields are not reused, as
the importing ledger chains its own rows.
"""

from __future__ import annotations

from typing import Any

from app.core.ingest.errors import RecordError
from app.core.ingest.records import (
    ImportedRecord,
    ReadOptions,
    chat_messages,
    iso_time,
    json_safe,
    kind_of,
    need_dict,
    opt_float,
    opt_int,
    opt_str,
)

# Keys every exported ledger row has, which together tell the export from other JSON Lines.
MARK_KEYS = ("uuid", "row_hash", "prev_hash", "started_at", "source", "status")
STATUSES = ("ok", "cancelled", "error")
MODES = ("chat", "completion")
ORIGIN_KEYS = ("id", "uuid", "row_hash", "source", "workflow", "conversation_id")  # kept as meta.import.ledger_*


def is_ledger_row(value: Any) -> bool:
    """True when a record looks like a row of Stillroom's JSONL export."""
    return isinstance(value, dict) and all(key in value for key in MARK_KEYS)


def read_ledger_row(value: Any, options: ReadOptions) -> list[ImportedRecord]:
    """One exported ledger row as the generation it records."""
    row = need_dict(value, "the row")
    if not is_ledger_row(row):
        missing = [key for key in MARK_KEYS if key not in row]
        raise RecordError(f"not a Stillroom ledger row (no {', '.join(missing)})")
    status = opt_str(row.get("status"), "status")
    if status not in STATUSES:
        raise RecordError(f"status should be one of {', '.join(STATUSES)}, got {status!r:.40}")
    mode = opt_str(row.get("mode"), "mode")
    if mode is not None and mode not in MODES:
        raise RecordError(f"mode should be chat or completion, got {mode!r:.40}")
    started = row.get("started_at")
    started_at = iso_time(started) if isinstance(started, str) else None
    if started_at is None:
        raise RecordError(f"started_at should be an ISO 8601 time, got {kind_of(started)}")
    messages = row.get("messages")
    params = row.get("params")
    if params is not None and not isinstance(params, dict):
        raise RecordError(f"params should be an object, got {kind_of(params)}")
    logprobs_requested = row.get("logprobs_requested")
    if logprobs_requested is not None and not isinstance(logprobs_requested, (bool, int)):
        raise RecordError(f"logprobs_requested should be 0 or 1, got {kind_of(logprobs_requested)}")
    origin = {"ledger_" + key: row[key] for key in ORIGIN_KEYS
              if isinstance(row.get(key), (str, int)) and not isinstance(row.get(key), bool)}
    return [ImportedRecord(
        mode=mode,
        messages=chat_messages(messages, "messages") if messages is not None else None,
        system_prompt=opt_str(row.get("system_prompt"), "system_prompt"),
        prompt=opt_str(row.get("prompt"), "prompt"),
        response=opt_str(row.get("response"), "response"),
        model_name=opt_str(row.get("model_name"), "model_name"),
        params=json_safe(params, "params") if params else None,
        seed=opt_int(row.get("seed"), "seed"),
        logprobs_requested=None if logprobs_requested is None else bool(logprobs_requested),
        finish_reason=opt_str(row.get("finish_reason"), "finish_reason"),
        logprobs=json_safe(row.get("logprobs"), "logprobs"),
        prompt_tokens=opt_int(row.get("prompt_tokens"), "prompt_tokens"),
        completion_tokens=opt_int(row.get("completion_tokens"), "completion_tokens"),
        duration_ms=opt_float(row.get("duration_ms"), "duration_ms"),
        started_at=started_at,
        finished_at=iso_time(row["finished_at"]) if isinstance(row.get("finished_at"), str) else None,
        status=status,
        error=opt_str(row.get("error"), "error"),
        origin=origin,
    )]


__all__ = ["MARK_KEYS", "is_ledger_row", "read_ledger_row"]
