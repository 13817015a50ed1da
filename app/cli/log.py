"""`stillroom log ...`: list, show, export, back up and verify the ledger; list its events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from app.core.errors import StillroomError
from app.core.store import Ledger
from app.core.store.backup import backup_ledger
from app.core.store.events import EVENT_KINDS, list_events, verify_events
from app.core.store.export import EXPORT_FORMATS, export_rows, record_export
from app.core.store.export_parquet import export_parquet
from app.core.store.heads import remember
from app.core.store.queries import LogFilter, get_generation, iter_generations, list_generations
from app.cli.common import echo_err, terminal_safe, with_ledger
from app.cli.log_tree import COMMANDS as TREE_COMMANDS
from app.cli.log_tree import report_tree

EXCERPT = 60
PARQUET = "parquet"


def filter_options(func: Any) -> Any:
    """--workflow, --source, --status, --model, --search."""
    for option in reversed([
        click.option("--workflow", default=None, help="Only this workflow."),
        click.option("--source", type=click.Choice(["chat", "cli", "batch", "server", "import", "lab"]), default=None),
        click.option("--status", type=click.Choice(["ok", "cancelled", "error"]), default=None),
        click.option("--model", "model_sha256", default=None, help="Model sha256 (prefix)."),
        click.option("--search", default=None, help="Full-text search over prompts and responses."),
    ]):
        func = option(func)
    return func


def _excerpt(text: str | None) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= EXCERPT else flat[: EXCERPT - 1] + "…"


@click.group()
def log() -> None:
    """Browse, export and verify the generation ledger."""


@log.command("list")
@filter_options
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows.")
@with_ledger
def list_command(ledger: Ledger, limit: int, as_json: bool, **filters: Any) -> None:
    """The newest generations (filtered)."""
    rows = list_generations(ledger.db, LogFilter(**filters), limit=limit)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        echo_err("no generations match")
        return
    for row in rows:
        click.echo(f"#{row['id']:<6} {row['started_at'][:19]}  {row['source']:<6} {row['status']:<9} "
                   f"{(row['workflow'] or '-'):<14} {(row['model_name'] or '-')[:18]:<18} "
                   f"{row['completion_tokens'] or 0:>5} tok  {_excerpt(row['prompt'])}")


@log.command("show")
@click.argument("generation_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the row as JSON.")
@with_ledger
def show_command(ledger: Ledger, generation_id: int, as_json: bool) -> None:
    """One generation with its full request and response."""
    row = get_generation(ledger.db, generation_id)
    if as_json:
        click.echo(json.dumps(row, ensure_ascii=False, indent=2))
        return
    for key in ("id", "uuid", "started_at", "finished_at", "source", "workflow", "conversation_id", "status",
                "finish_reason", "model_name", "model_sha256", "mode", "chat_format", "seed", "prompt_tokens",
                "completion_tokens", "ttft_ms", "tokens_per_s", "error", "row_hash"):
        if row.get(key) is not None:
            click.echo(f"{key:>17}: {row[key]}")
    click.echo(f"{'params':>17}: {json.dumps(row['params'], ensure_ascii=False)}")
    if row.get("system_prompt"):
        click.echo(f"\n--- system ---\n{row['system_prompt']}")
    if row.get("messages"):
        for message in row["messages"]:
            click.echo(f"\n--- {message['role']} ---\n{message['content']}")
    else:
        click.echo(f"\n--- prompt ---\n{row['prompt']}")
    click.echo(f"\n--- response ---\n{row['response']}")


@log.command("export")
@filter_options
@click.option("--format", "fmt", type=click.Choice((*EXPORT_FORMATS, PARQUET)), default="jsonl", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@with_ledger
def export_command(ledger: Ledger, fmt: str, out: Path, **filters: Any) -> None:
    """Write the (filtered) generations to a file. Exits with status 1, writing nothing, when no
    generation matches; and says so when none of those matching is exported (ShareGPT keeps only
    successful ones). Parquet carries every stored column with the chain and the Merkle leaves, for
    analytics engines (DuckDB, Spark, Ray)."""
    flt = LogFilter(**filters)
    if next(iter_generations(ledger.db, flt, chunk=1), None) is None:
        raise click.ClickException("no generations match" + (" these filters" if any(filters.values()) else
                                                             ": the ledger is empty") + "; nothing exported")
    if fmt == PARQUET:
        count = export_parquet(ledger.db, flt, out)
    else:
        count = export_rows(iter_generations(ledger.db, flt), fmt, out)
    record_export(ledger.db, out, fmt, count, filters)
    if count == 0 and fmt == PARQUET:
        raise click.ClickException(f"wrote {out} with no records: the matching generations have no Merkle "
                                   "leaves yet; run `stillroom log verify`")
    if count == 0:
        raise click.ClickException(f"wrote {out} with no records: none of the matching generations finished "
                                   "successfully, and ShareGPT holds only successful ones")
    echo_err(f"wrote {count} record(s) to {out}")


@log.command("verify")
@with_ledger
def verify_command(ledger: Ledger) -> None:
    """Recompute the hash chain and check it against the record of chain heads kept beside the ledger.

    Exit 0 and print the chain head when intact (the head is then remembered, so that a later
    rewrite of the ledger that recomputes the chain is detected); else name the first bad row.
    """
    result = ledger.verify()
    if not result.ok:
        raise click.ClickException(f"ledger broken at row {result.bad_id}: {result.problem} "
                                   f"({result.rows} rows before it verified)")
    try:
        remember(ledger.path, result.head_id, result.head_hash, why="printed by log verify")
    except StillroomError as exc:
        echo_err(f"warning: {exc}; a later rewrite back to before this head would not be detected")
    if result.head_hash is None:
        click.echo("ledger intact: empty")
    else:
        click.echo(f"ledger intact: {result.rows} rows, chain head {result.head_hash} (row {result.head_id})")
    report_tree(ledger)
    events = verify_events(ledger.db)
    if not events.ok:
        raise click.ClickException(f"event log broken at event {events.bad_id}: {events.problem} "
                                   f"({events.rows} events before it verified)")
    if events.head_hash is None:
        click.echo("event log intact: empty")
    else:
        click.echo(f"event log intact: {events.rows} events, chain head {events.head_hash} (event {events.head_id})")


@log.command("backup")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@with_ledger
def backup_command(ledger: Ledger, out: Path, force: bool) -> None:
    """Copy the ledger to OUT as one consistent file (SQLite's online backup; safe while the app runs).

    Copying ledger.db by hand can miss the newest rows, which live in ledger.db-wal until a checkpoint.
    """
    result = backup_ledger(ledger.db, ledger.path, out, force=force)
    head = f", chain head {result.head_hash} (row {result.head_id})" if result.head_hash else ""
    click.echo(f"backed up {result.generations} generations and {result.events} events to {result.path} "
               f"({result.size_bytes} bytes{head})")


@log.command("events")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many, newest first.")
@click.option("--kind", type=click.Choice(EVENT_KINDS), default=None, help="Only events of this kind.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON events.")
@with_ledger
def events_command(ledger: Ledger, limit: int, kind: str | None, as_json: bool) -> None:
    """What happened besides generations: exports, imports, statements, keys, models, settings, backups."""
    if limit < 1:
        raise click.BadParameter("must be at least 1", param_hint="--limit")
    events = list_events(ledger.db, limit=limit, kind=kind)
    if as_json:
        click.echo(json.dumps([event.to_dict() for event in events], ensure_ascii=False, indent=2))
        return
    if not events:
        echo_err("no events recorded" + (f" of kind {kind}" if kind else ""))
        return
    for event in events:
        click.echo(f"#{event.id:<5} {event.at[:19]}  {event.kind:<16} {terminal_safe(event.summary)}")


for _command in TREE_COMMANDS:
    log.add_command(_command)
