"""`stillroom import FILE --workflow NAME`: read a dataset or log file into the ledger."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click

from app.cli.common import echo_err, with_ledger
from app.core.cancel import CancelToken
from app.core.ingest import FORMATS, ImportProgress, import_file
from app.core.ingest.summary_text import summary_lines
from app.core.progress import drive
from app.core.store import Ledger

PROGRESS_INTERVAL_S = 0.25
EXIT_CANCELLED = 130


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--workflow", required=True, help="The workflow the imported rows belong to.")
@click.option("--format", "fmt", type=click.Choice(("auto", *FORMATS)), default="auto", show_default=True,
              help="The file's format; auto detects it from the extension and the first records.")
@click.option("--join", "join", type=click.Path(path_type=Path), default=None,
              help="The other file of an OpenAI Batch API pair (the input file for an output file, or the "
                   "reverse): results are joined with their requests by custom_id.")
@click.option("--prompt-field", default=None, help="Field (or CSV column) holding the prompt.")
@click.option("--response-field", default=None, help="Field (or CSV column) holding the response.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@with_ledger
def import_command(ledger: Ledger, file: Path, workflow: str, fmt: str, join: Path | None,
                   prompt_field: str | None, response_field: str | None, as_json: bool) -> None:
    """Import FILE into the ledger as rows of a workflow (source `import`).

    Formats: OpenAI chat messages JSONL, OpenAI Batch API input or output JSONL (--join both),
    ShareGPT JSON/JSONL, Alpaca JSON, prompt/response JSONL or CSV, Stillroom's own log exports
    (JSONL, Markdown, ShareGPT), and simonw/llm's logs.db (every schema, old and new).
    Malformed records are reported and skipped. Records already imported from the same file are
    skipped, so an interrupted import (Ctrl+C) can simply be run again to finish. Exits with
    status 1, saying why, when the file yields nothing: no records, or every record malformed.
    """
    if (prompt_field or response_field) and fmt not in ("auto", "pairs"):
        raise click.UsageError("--prompt-field and --response-field go with --format pairs (or auto)")
    if response_field and not prompt_field:
        raise click.UsageError("--response-field needs --prompt-field")
    cancel = CancelToken()
    previous = _on_interrupt(cancel)
    show_progress = sys.stderr.isatty() and not as_json
    shown_at = [0.0]  # when the progress line was last written

    def show(item: ImportProgress) -> None:
        if show_progress and time.monotonic() - shown_at[0] > PROGRESS_INTERVAL_S:
            shown_at[0] = time.monotonic()
            click.echo(f"\r{_progress_line(item)}", nl=False, err=True)

    try:
        summary = drive(import_file(ledger, file, workflow, fmt, join=join, prompt_field=prompt_field,
                                    response_field=response_field, cancel=cancel), show)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        if show_progress and shown_at[0]:
            click.echo("\r\033[K", nl=False, err=True)
    if as_json:
        click.echo(json.dumps(summary.as_dict(), ensure_ascii=False, indent=2))
    else:
        for line in summary_lines(summary):
            click.echo(line)
    reason = summary.nothing_imported()
    if reason is not None:
        echo_err(f"Nothing imported: {reason}.")
        sys.exit(1)
    if summary.cancelled:
        echo_err("Import cancelled: the rows committed so far stay in the ledger; run the same command "
                 "again to continue (records already imported are skipped).")
        sys.exit(EXIT_CANCELLED)


def _on_interrupt(cancel: CancelToken) -> Any:
    """Make the first Ctrl+C cancel the import between records (a second one interrupts at once)."""
    try:
        previous = signal.getsignal(signal.SIGINT)
    except ValueError:
        return None

    def handler(signum: int, frame: FrameType | None) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        echo_err("\nStopping after the current record (Ctrl+C again to stop at once)...")

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        return None
    return previous


def _progress_line(progress: ImportProgress) -> str:
    share = f"{progress.fraction:4.0%} " if progress.fraction is not None else ""
    return (f"{share}{progress.records:,} records read, {progress.rows_written:,} rows written, "
            f"{progress.skipped:,} skipped, {progress.malformed:,} malformed")

