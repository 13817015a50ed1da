"""`stillroom audit`: how the ledger's workflows resemble the flagged distillation patterns."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from app.core.audit.embeddings import Encoder
from app.core.audit.patterns import load_library
from app.core.audit.report import to_html, to_json, to_markdown
from app.core.audit.run import run_audit
from app.core.outfiles import replace_file
from app.core.progress import Progress, drive
from app.core.store import Ledger
from app.cli.common import echo_err, with_ledger


@click.command()
@click.option("--workflow", "workflows", multiple=True, help="Only this workflow (repeatable).")
@click.option("--json", "fmt", flag_value="json", help="JSON report (the default).")
@click.option("--markdown", "fmt", flag_value="markdown", help="Markdown report.")
@click.option("--html", "fmt", flag_value="html", help="HTML report.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write to a file.")
@with_ledger
def audit(ledger: Ledger, workflows: tuple[str, ...], fmt: str | None, out: Path | None) -> None:
    """Score every generation against the pattern library and report each workflow's levels.

    Incremental: only generations not audited with this library version are embedded and scored.
    """
    library = load_library()
    result = drive(run_audit(ledger.db, Encoder(), library, list(workflows) or None), _show_progress)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    assert result is not None
    text = {"json": to_json, "markdown": to_markdown, "html": to_html}[fmt or "json"](result)
    if out:
        with replace_file(out) as handle:  # owner-only: the report quotes prompts
            handle.write(text)
        echo_err(f"wrote the audit of {len(result.workflows)} workflow(s) to {out}")
    else:
        click.echo(text)


def _show_progress(item: Progress) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{item.stage}: {item.done}/{item.total}    ")
