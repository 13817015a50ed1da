"""Column definitions of the generation log, shared by the migrations, the writer and the chain.

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
    "source": "TEXT",  # chat, cli, batch, server, import, lab
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
SOURCES = ("chat", "cli", "batch", "server", "import", "lab")
STATUSES = ("ok", "cancelled", "error")
FTS_COLUMNS = ("prompt", "response", "system_prompt")
