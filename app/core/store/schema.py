"""Column definitions of the generation log, shared by the migrations, the appends and the chain.

The chained columns are fixed: the hash of a row covers exactly CHAIN_COLUMNS, so a later
migration that adds a column does not change the hashes of rows already written.
"""

from __future__ import annotations

GENERATIONS_TABLE = "generations"
GENESIS_HASH = "0" * 64
CHAIN_VERSION = 1

# name -> SQLite type. Order is the column order of the table.
GENERATION_COLUMNS: dict[str, str] = {
    "id": "INTEGER",
    "uuid": "TEXT",
    "started_at": "TEXT",
    "finished_at": "TEXT",
    "source": "TEXT",  # chat, cli, batch, server, import, lab, proxy
    "workflow": "TEXT",
    "conversation_id": "TEXT",
    "parent_id": "INTEGER",  # the generation this one continues or regenerates
    "model_sha256": "TEXT",
    "model_name": "TEXT",
    "mode": "TEXT",  # chat or completion
    "chat_format": "TEXT",
    "system_prompt": "TEXT",
    "prompt": "TEXT",  # the completion prompt, or the last user message of a chat
    "messages": "TEXT",  # JSON list of {role, content}, chat only
    "params": "TEXT",  # JSON: every sampling parameter as sent to llama.cpp
    "seed": "INTEGER",
    "logprobs_requested": "INTEGER",
    "response": "TEXT",
    "finish_reason": "TEXT",
    "logprobs": "TEXT",  # JSON, when asked for
    "prompt_tokens": "INTEGER",
    "completion_tokens": "INTEGER",
    "ttft_ms": "REAL",
    "duration_ms": "REAL",
    "tokens_per_s": "REAL",
    "status": "TEXT",  # ok, cancelled, error
    "error": "TEXT",
    "prompt_hash": "TEXT",
    "response_hash": "TEXT",
    "runtime": "TEXT",  # JSON: llama.cpp build, n_ctx, n_gpu_layers, threads
    "meta": "TEXT",  # JSON: anything else (API key name, batch job, import origin)
    "prev_hash": "TEXT",
    "row_hash": "TEXT",
}

JSON_COLUMNS = ("messages", "params", "logprobs", "runtime", "meta")
CHAIN_COLUMNS = tuple(name for name in GENERATION_COLUMNS if name != "row_hash")
WRITABLE_COLUMNS = tuple(name for name in GENERATION_COLUMNS if name not in ("id", "prev_hash", "row_hash"))
SOURCES = ("chat", "cli", "batch", "server", "import", "lab", "proxy")
STATUSES = ("ok", "cancelled", "error")
FTS_COLUMNS = ("prompt", "response", "system_prompt")

# The event log (app.core.store.events): its own chain over EVENT_CHAIN_COLUMNS, its head in event_head.
EVENTS_TABLE = "events"
EVENT_HEAD_TABLE = "event_head"
EVENT_COLUMNS: dict[str, str] = {
    "id": "INTEGER",
    "at": "TEXT",
    "kind": "TEXT",
    "summary": "TEXT",  # one line for people
    "details": "TEXT",  # JSON: paths, counts, names, digests
    "prev_hash": "TEXT",
    "row_hash": "TEXT",
}
EVENT_CHAIN_COLUMNS = tuple(name for name in EVENT_COLUMNS if name != "row_hash")

# Usage per UTC day (app.core.store.usage), kept by a trigger so that statistics never scan the log.
# One row per (dimension, key, day) for each of the dimensions model (key: sha256), workflow and source:
# a few thousand rows a year however many generations, clustered by (dimension, key, day). Every
# generation counts once in each dimension. A missing workflow or model is stored as ''.
USAGE_DAILY_TABLE = "usage_daily"
USAGE_DIMENSIONS = {  # dimension -> (key expression, label expression) over a generation row {r}
    "model": ("coalesce({r}.model_sha256, '')", "coalesce({r}.model_name, '')"),
    "workflow": ("coalesce({r}.workflow, '')", "coalesce({r}.workflow, '')"),
    "source": ("coalesce({r}.source, '')", "coalesce({r}.source, '')"),
}
# A row without a timestamp (possible in imports) counts under the day '' (in all-time totals only).
_USAGE_DAY = "coalesce(date({r}.started_at), substr({r}.started_at, 1, 10), '')"
USAGE_DAILY_SQL = f"""
CREATE TABLE {USAGE_DAILY_TABLE} (
    dimension TEXT NOT NULL,
    key TEXT NOT NULL,
    day TEXT NOT NULL,
    label TEXT NOT NULL,
    generations INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    PRIMARY KEY (dimension, key, day)
) WITHOUT ROWID"""
_USAGE_COLUMNS = ("dimension, key, day, label, generations, errors, prompt_tokens, completion_tokens, "
                  "duration_ms")
_USAGE_UPSERTS = "\n".join(
    f"""    INSERT INTO {USAGE_DAILY_TABLE} ({_USAGE_COLUMNS})
    VALUES ('{dimension}', {key.format(r="NEW")}, {_USAGE_DAY.format(r="NEW")}, {label.format(r="NEW")}, 1,
            NEW.status != 'ok', coalesce(NEW.prompt_tokens, 0), coalesce(NEW.completion_tokens, 0),
            coalesce(NEW.duration_ms, 0))
    ON CONFLICT (dimension, key, day) DO UPDATE SET
        generations = generations + 1,
        errors = errors + excluded.errors,
        prompt_tokens = prompt_tokens + excluded.prompt_tokens,
        completion_tokens = completion_tokens + excluded.completion_tokens,
        duration_ms = duration_ms + excluded.duration_ms,
        label = CASE WHEN excluded.label != '' THEN excluded.label ELSE label END;"""
    for dimension, (key, label) in USAGE_DIMENSIONS.items()
)
USAGE_TRIGGER_SQL = f"""
CREATE TRIGGER {GENERATIONS_TABLE}_usage_daily AFTER INSERT ON {GENERATIONS_TABLE} BEGIN
{_USAGE_UPSERTS}
END"""
USAGE_BACKFILL_SQL = tuple(
    f"""INSERT INTO {USAGE_DAILY_TABLE} ({_USAGE_COLUMNS})
SELECT '{dimension}', k, d, max(l), count(*), sum(status != 'ok'), sum(coalesce(prompt_tokens, 0)),
       sum(coalesce(completion_tokens, 0)), sum(coalesce(duration_ms, 0))
FROM (SELECT {key.format(r="g")} AS k, {_USAGE_DAY.format(r="g")} AS d, {label.format(r="g")} AS l,
             g.status, g.prompt_tokens, g.completion_tokens, g.duration_ms FROM {GENERATIONS_TABLE} AS g)
GROUP BY k, d"""
    for dimension, (key, label) in USAGE_DIMENSIONS.items()
)
