"""Named, append-only migrations of the ledger database (sqlite_utils.Migrations).

Never edit or reorder a migration once released; append a new one instead.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from app.core.store.checkpoint import create_table as create_checkpoint_table
from app.core.store.schema import (
    EVENT_COLUMNS,
    EVENT_HEAD_TABLE,
    EVENTS_TABLE,
    FTS_COLUMNS,
    GENERATION_COLUMNS,
    GENERATIONS_TABLE,
    USAGE_BACKFILL_SQL,
    USAGE_DAILY_SQL,
    USAGE_TRIGGER_SQL,
)
from app.core.store.tree import build_tree, create_tables, tree_size

MIGRATION_SET = "stillroom"
migrations = Migrations(MIGRATION_SET)

_PY_TYPES = {"INTEGER": int, "REAL": float, "TEXT": str}


@migrations()
def m001_initial(db: Database) -> None:
    """The generation log, its chain head, the models table and the model-hash cache."""
    db[GENERATIONS_TABLE].create(
        {name: _PY_TYPES[kind] for name, kind in GENERATION_COLUMNS.items()}, pk="id"
    )
    db["ledger_head"].create(
        {"id": int, "last_id": int, "last_hash": str, "row_count": int, "updated_at": str}, pk="id"
    )
    db["models"].create(
        {
            "sha256": str,
            "path": str,
            "file_name": str,
            "size_bytes": int,
            "name": str,
            "architecture": str,
            "quantization": str,
            "size_label": str,
            "license": str,
            "base_model": str,
            "context_length": int,
            "has_chat_template": int,
            "chat_template": str,
            "metadata": str,
            "added_at": str,
        },
        pk="sha256",
    )
    db["model_files"].create(
        {"path": str, "size_bytes": int, "mtime_ns": int, "sha256": str, "hashed_at": str}, pk="path"
    )


@migrations()
def m002_generations_fts(db: Database) -> None:
    """Full-text search over prompts, responses and system prompts (FTS5, kept by triggers)."""
    db[GENERATIONS_TABLE].enable_fts(list(FTS_COLUMNS), fts_version="FTS5", create_triggers=True)


@migrations()
def m003_generation_indexes(db: Database) -> None:
    """Indexes for the filters of the ledger browser and for provenance matching."""
    table = db[GENERATIONS_TABLE]
    for columns in (
        ["workflow"],
        ["started_at"],
        ["conversation_id"],
        ["model_sha256"],
        ["source"],
        ["status"],
        ["prompt_hash"],
        ["response_hash"],
    ):
        table.create_index(columns, if_not_exists=True)
    table.create_index(["uuid"], unique=True, if_not_exists=True)


@migrations()
def m004_conversations(db: Database) -> None:
    """Titles and settings of chat conversations; their turns are rows of the generation log."""
    db["conversations"].create(
        {
            "id": str,
            "title": str,
            "created_at": str,
            "updated_at": str,
            "system_prompt": str,
            "model_sha256": str,
            "settings": str,
        },
        pk="id",
    )


@migrations()
def m005_api_keys(db: Database) -> None:
    """API keys of the local server: only a hash of each key is kept, with its workflow."""
    db["api_keys"].create(
        {"id": int, "name": str, "key_sha256": str, "prefix": str, "workflow": str, "created_at": str,
         "revoked_at": str},
        pk="id",
    )
    db["api_keys"].create_index(["key_sha256"], unique=True)


@migrations()
def m006_batch_jobs(db: Database) -> None:
    """Batch runs: the job spec and its state; the generations themselves are ledger rows."""
    db["batch_jobs"].create(
        {"id": int, "name": str, "workflow": str, "spec": str, "spec_sha256": str, "output_path": str,
         "status": str, "total": int, "created_at": str, "updated_at": str, "error": str},
        pk="id",
    )


@migrations()
def m007_embeddings(db: Database) -> None:
    """Text embeddings for the audit, keyed by the normalized text's sha256 and the model name."""
    db["embeddings"].create(
        {"text_sha256": str, "model": str, "dim": int, "vector": bytes, "created_at": str},
        pk=("text_sha256", "model"),
    )


@migrations()
def m008_audit_scores(db: Database) -> None:
    """Per-generation audit results for one pattern-library version (scores, evidence, flags)."""
    db["audit_scores"].create(
        {"generation_id": int, "library_hash": str, "workflow": str, "started_at": str, "text_key": str,
         "scores": str, "evidence": str, "flags": int, "skeleton": str, "prefix_sig": str, "suffix_sig": str},
        pk=("generation_id", "library_hash"),
    )
    db["audit_scores"].create_index(["library_hash", "workflow"])


@migrations()
def m009_event_log(db: Database) -> None:
    """The event log (exports, imports, statements, keys, models, settings, backups) and its chain head."""
    db[EVENTS_TABLE].create({name: _PY_TYPES[kind] for name, kind in EVENT_COLUMNS.items()}, pk="id")
    db[EVENTS_TABLE].create_index(["kind"])
    db[EVENT_HEAD_TABLE].create(
        {"id": int, "last_id": int, "last_hash": str, "row_count": int, "updated_at": str}, pk="id"
    )


@migrations()
def m010_usage_daily(db: Database) -> None:
    """Usage per UTC day and model, workflow or source, kept by a trigger on every generation insert
    and filled from the rows already logged; usage statistics read it instead of the whole log."""
    db.execute(USAGE_DAILY_SQL)
    db.execute(USAGE_TRIGGER_SQL)
    for statement in USAGE_BACKFILL_SQL:
        db.execute(statement)


@migrations()
def m011_merkle_tree(db: Database) -> None:
    """The Merkle tree beside the hash chain: a salt per row, every subtree hash, the log's origin, its checkpoints;
    rows already logged get their salts and leaves here (the chain is not touched). A second process
    that applies this migration at the same moment finds the tree its rival built and committed (its
    own tables are made IF NOT EXISTS, so nothing else tells it), and leaves it as it is."""
    create_tables(db.conn)
    create_checkpoint_table(db.conn)
    if tree_size(db.conn) == 0:
        build_tree(db.conn)


@migrations()
def m012_audit_scores_key(db: Database) -> None:
    """audit_scores.library_hash is renamed scores_key, for what it has always held: scorer.scores_key(),
    the library's content hash combined with the scorer's version (not the library hash alone).
    Its index is made under the new name first, so that a second process applying this migration at
    the same moment fails with 'already exists', which open_db retries after the first one's commit."""
    db.execute("CREATE INDEX idx_audit_scores_scores_key_workflow ON audit_scores (library_hash, workflow)")
    db.execute("DROP INDEX idx_audit_scores_library_hash_workflow")
    db.execute("ALTER TABLE audit_scores RENAME COLUMN library_hash TO scores_key")


@migrations()
def m013_audit_aggregates(db: Database) -> None:
    """Each workflow's judged audit, kept beside its scores (app.core.audit.aggregates): a whole audit
    of an unchanged workflow, and a refresh of a workflow it does not touch, read it back instead of
    re-reading every scored row. A row is used only while its stamp (the workflow's scored-row count
    and highest audit_scores rowid, the embedding model, the judging code's fingerprint) still holds;
    otherwise its running aggregates (`state`) take the new rows, or it is judged again. Made with a plain CREATE TABLE so that
    a second process applying this migration at the same moment fails with 'already exists', which
    open_db retries after the first one's commit."""
    db.execute("CREATE TABLE audit_aggregates (scores_key TEXT NOT NULL, workflow TEXT NOT NULL, model TEXT NOT NULL, "
               "fingerprint TEXT NOT NULL, rows INTEGER NOT NULL, last_rowid INTEGER NOT NULL, audit TEXT NOT NULL, "
               "state TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (scores_key, workflow))")
    # what folding new rows into a workflow's running aggregates probes (app.core.audit.workflow_state)
    for column in ("started_at", "skeleton", "prefix_sig", "suffix_sig"):
        db.execute(f"CREATE INDEX IF NOT EXISTS idx_audit_scores_workflow_{column} "
                   f"ON audit_scores (scores_key, workflow, {column})")
