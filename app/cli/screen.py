"""`stillroom screen FILE`: screen any dataset file (its prompts against the pattern library, its
responses against the local style model) without adding it to the ledger; `stillroom screen train`:
train the style model; `stillroom screen model`: what the saved style model knows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from app.cli.common import DefaultCommandGroup, echo_err, open_ledger, parse_fields, terminal_safe
from app.core.audit.embeddings import Encoder
from app.core.audit.patterns import load_library
from app.core.outfiles import replace_file
from app.core.progress import Progress, drive
from app.core.screen.attribution import AttributionError, StyleModel
from app.core.screen.model_file import load_model, save_model
from app.core.screen.report import ROW_FORMATS, rows_text, to_html, to_json, to_markdown
from app.core.screen.run import screen_file
from app.core.screen.training import labelled_file, ledger_generations
from app.core.screen.train_job import train_job
from app.core.store.ledger import utc_now


class ScreenGroup(DefaultCommandGroup):
    """`screen FILE ...` runs the hidden `file` command; `screen train` and `screen model` are subcommands."""

    default_command = "file"


def _safe_lines(text: str) -> str:
    return "\n".join(terminal_safe(line) for line in text.split("\n"))


def _progress(item: Progress) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{item.stage}: {item.done}/{item.total or '?'}    ")


@click.group(cls=ScreenGroup)
def screen() -> None:
    """Screen a dataset file: pattern resemblance of its prompts, and whose style its responses carry."""


@screen.command("file", hidden=True)
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--field", "field_pairs", multiple=True, metavar="ROLE=FIELD",
              help="Name a field by hand (roles: prompt, response, input, system, messages, conversations).")
@click.option("--json", "fmt", flag_value="json", help="JSON report (the default).")
@click.option("--markdown", "fmt", flag_value="markdown", help="Markdown report.")
@click.option("--html", "fmt", flag_value="html", help="HTML report.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the report to a file.")
@click.option("--rows", "rows_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write per-row scores to a .jsonl or .csv file.")
@click.option("--flagged-only", is_flag=True, help="With --rows: only rows whose top pattern score is a hit.")
def screen_file_command(dataset: Path, field_pairs: tuple[str, ...], fmt: str | None, out: Path | None,
                        rows_out: Path | None, flagged_only: bool) -> None:
    """Screen DATASET without adding it to the ledger."""
    row_format = rows_out.suffix.lower().lstrip(".") if rows_out else None
    if rows_out and row_format not in ROW_FORMATS:
        raise click.BadParameter("give a file ending in .jsonl or .csv", param_hint="--rows")
    model: StyleModel | None
    try:
        model, reason = load_model(), ""
    except AttributionError as exc:
        model, reason = None, str(exc)
    ledger = open_ledger()
    try:
        result = drive(screen_file(dataset, ledger.db, Encoder(), load_library(), model, parse_fields(field_pairs),
                                   reason), _progress)
    finally:
        ledger.close()
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    assert result is not None
    text = {"json": to_json, "markdown": to_markdown, "html": to_html}[fmt or "json"](result)
    if rows_out:
        with replace_file(rows_out) as handle:
            handle.write(rows_text(result, row_format or "jsonl", flagged_only))
        echo_err(f"wrote {'flagged ' if flagged_only else ''}rows of {result.screened:,} screened to {rows_out}")
    if out:
        with replace_file(out) as handle:  # owner-only: the report quotes the file's prompts
            handle.write(text)
        echo_err(f"wrote the screen of {result.screened:,} rows to {out}")
    else:
        click.echo(_safe_lines(text))
    echo_err(_safe_lines(f"responses: {result.attribution.verdict} ({result.attribution.reason})"))


@screen.command("train")
@click.argument("dataset", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--label-field", default=None, help="The field that names each row's model (with DATASET).")
@click.option("--ledger", "from_ledger", is_flag=True, help="Learn from the ledger's generations, grouped by model.")
@click.option("--field", "field_pairs", multiple=True, metavar="ROLE=FIELD", help="Name a field by hand.")
def train(dataset: Path | None, label_field: str | None, from_ledger: bool, field_pairs: tuple[str, ...]) -> None:
    """Train the style model from a labelled DATASET (--label-field) or the ledger (--ledger)."""
    if from_ledger == bool(dataset):
        raise click.UsageError("give either DATASET with --label-field, or --ledger")
    if dataset and not label_field:
        raise click.UsageError("with DATASET, name the field that holds each row's model: --label-field")
    ledger = open_ledger()
    try:
        if from_ledger:
            source = ledger_generations(ledger.db)
        else:
            assert dataset is not None and label_field
            source = drive(labelled_file(dataset, label_field, parse_fields(field_pairs)), _progress)
        assert source is not None
        model = drive(train_job(source, utc_now(), db=ledger.db), _progress)
    finally:
        ledger.close()
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    assert model is not None
    path = save_model(model)
    if source.skipped:
        echo_err(f"skipped {source.skipped} rows without a label or a response")
    echo_err(_safe_lines(f"trained on {model.training_set.name}; saved to {path}; attributes by {model.method}, "
                         f"held-out accuracy {model.heldout_accuracy * 100:.1f}%"
                         + (f" ({model.likelihood_note})" if model.likelihood_note else "")))
    click.echo(_safe_lines(json.dumps(model.as_meta(), indent=2, ensure_ascii=False)))


@screen.command("model")
def model_command() -> None:
    """Show the saved style model: its training set, families, held-out accuracy and AUC."""
    click.echo(_safe_lines(json.dumps(load_model().as_meta(), indent=2, ensure_ascii=False)))
