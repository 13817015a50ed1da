"""`stillroom provenance DATASET`: match a dataset to the ledger and write its signed provenance files;
`stillroom provenance key`: the publisher's public key; `stillroom verify`: check a statement offline."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from app.cli.common import DefaultCommandGroup, echo_err, parse_fields
from app.core.paths import ledger_path as default_ledger_path
from app.core.progress import drive

SHOWN_PROBLEMS = 5

class ProvenanceGroup(DefaultCommandGroup):
    """`provenance DATASET ...` runs the hidden `write` command; `provenance key` is a subcommand."""

    default_command = "write"


_fields = parse_fields


class _Progress:
    """One self-overwriting line on a terminal's stderr; silent otherwise."""

    def __init__(self) -> None:
        self.live = sys.stderr.isatty()
        self.shown = False

    def show(self, stage: str, done: int, total: int | None) -> None:
        if self.live:
            sys.stderr.write(f"\r{stage}: {done}/{total if total is not None else '?'}        ")
            self.shown = True

    def end(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            self.shown = False


@click.group(cls=ProvenanceGroup, invoke_without_command=False)
def provenance() -> None:
    """Write signed provenance files for a dataset made with Stillroom.

    \b
    stillroom provenance DATASET [--out DIR] [--license L] [--description D] [--intended-use U]
    stillroom provenance key [--export FILE]

    DATASET (JSONL, JSON, CSV or Parquet) is matched row by row to the ledger; README.md (a
    dataset card), croissant.json and provenance.dsse.json (a signed in-toto statement) are
    written to DIR (default: the dataset's folder). Check them with `stillroom verify`.
    """


@provenance.command("write", hidden=True)
@click.argument("dataset", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the three files (default: the dataset's folder).")
@click.option("--license", "license_", default=None, help="The license you release the dataset under (e.g. cc-by-4.0).")
@click.option("--description", default=None, help="What the dataset is, in your words.")
@click.option("--intended-use", default=None, help="What the dataset is meant for.")
@click.option("--name", default=None, help="The dataset's name (default: the file name).")
@click.option("--creator", default=None, help="Who publishes the dataset.")
@click.option("--field", "field_pairs", multiple=True, metavar="ROLE=FIELD",
              help="Name a field by hand (roles: prompt, response, input, system, messages, conversations).")
@click.option("--export-untraced", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the rows not found in the ledger to this JSONL file.")
@click.option("--ledger", "ledger_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The ledger to match against (default: the one in the data folder).")
@click.option("--no-screening", is_flag=True, help="Leave the distillation-pattern screening out of the statement.")
@click.option("--force", is_flag=True, help="Overwrite a README.md in DIR that Stillroom did not write.")
@click.option("--allow-untraced", is_flag=True,
              help="Sign the statement even when no row of DATASET is traced to the ledger.")
def write_command(dataset: Path, out: Path | None, license_: str | None, description: str | None,
                  intended_use: str | None, name: str | None, creator: str | None, field_pairs: tuple[str, ...],
                  export_untraced: Path | None, ledger_file: Path | None, no_screening: bool, force: bool,
                  allow_untraced: bool) -> None:
    """Match DATASET to the ledger and write README.md, croissant.json and provenance.dsse.json.

    Exits with status 1, writing nothing, when no row is traced to the ledger (every row
    malformed, or none found) unless --allow-untraced is given.
    """
    from app.core.provenance.dataset import detect_shape
    from app.core.provenance.match import export_untraced as write_untraced
    from app.core.provenance.match import match_dataset
    from app.core.provenance.statement import Declared
    from app.core.provenance.write import iter_provenance, refuse_untraced

    ledger_file = ledger_file or default_ledger_path()
    if not ledger_file.exists():
        raise click.ClickException(f"{ledger_file}: no ledger database here")
    shape = detect_shape(dataset, _fields(field_pairs))
    echo_err(f"{dataset.name}: {shape.describe() if hasattr(shape, 'describe') else shape.kind}")
    progress = _Progress()
    report = drive(match_dataset(dataset, ledger_file, shape=shape),
                   lambda item: progress.show(f"matching ({item.stage})", item.done, item.total))
    progress.end()
    if export_untraced is not None:
        count = write_untraced(report, export_untraced)
        echo_err(f"wrote {count} untraced row(s) to {export_untraced}")
    _counts(report)
    refuse_untraced(report, allow_untraced)
    reason = report.nothing_traced()
    if reason is not None:
        echo_err(f"warning: {reason}; signing anyway (--allow-untraced)")
    declared = Declared(license=license_, description=description, intended_use=intended_use, name=name,
                        creator=creator)
    paths = drive(iter_provenance(report, ledger_file, declared, out or dataset.parent, screen=not no_screening,
                                  force=force, allow_untraced=allow_untraced),
                  lambda item: progress.show(item.stage, item.done, item.total))
    progress.end()
    _written(paths)


def _counts(report: Any) -> None:
    rows = report.rows or 0
    click.echo(f"{report.dataset_name}: {rows} rows, {report.malformed} malformed")
    for status in ("traced-exact", "traced-near", "untraced"):
        count = report.counts.get(status, 0)
        share = count / rows * 100 if rows else 0.0
        click.echo(f"  {status:<13} {count:>8}  {share:5.1f}%")
    for problem in report.problems[:SHOWN_PROBLEMS]:
        echo_err(f"  malformed: {problem.reason}")
    if report.malformed > SHOWN_PROBLEMS:
        echo_err(f"  ... and {report.malformed - SHOWN_PROBLEMS} more malformed rows")


def _written(paths: dict[str, Path]) -> None:
    click.echo("wrote:")
    for key in ("card", "croissant", "dsse", "public_key"):
        click.echo(f"  {paths[key]}")


@provenance.command("key")
@click.option("--export", "export_to", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the public key (PEM) to this file.")
def key_command(export_to: Path | None) -> None:
    """Show the public key that signs your provenance statements, and its fingerprint (made on first use)."""
    from app.core.provenance.signing import (
        PRIVATE_KEY_FILE,
        key_dir_path,
        key_fingerprint,
        load_or_create_key,
        public_key_pem,
    )

    key = load_or_create_key()
    pem = public_key_pem(key)
    click.echo(f"fingerprint: {key_fingerprint(key)}")
    click.echo(f"private key: {key_dir_path() / PRIVATE_KEY_FILE} (keep it private)")
    if export_to is not None:
        export_to.write_text(pem, encoding="ascii")
        click.echo(f"public key written to {export_to}")
    else:
        click.echo(pem, nl=False)


VERDICT_PREFIX = "VERDICT:"


@click.command("verify")
@click.argument("statement", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dataset", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--ledger", "ledger_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also check the ledger: the chain head and every traced generation are in it, unchanged.")
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The publisher's public key (PEM) to require, instead of the key the statement carries.")
@click.option("--consistency", "consistency_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A consistency proof (`stillroom log consistency OLD NEW` by the publisher) from the "
                   "checkpoint seen before to the statement's.")
def verify(statement: Path, dataset: Path, ledger_file: Path | None, key_file: Path | None,
           consistency_file: Path | None) -> None:
    """Check a provenance statement: its signature, the dataset's sha256, and (with --ledger) inclusion.

    \b
    The first line says how far the signing key is trusted: pinned (given with --key, or remembered
    from an earlier statement by the same publisher, like SSH's known_hosts) or not pinned (anyone
    could have signed it). Lines marked "claim" are what the statement says that nothing checks.
    The last line, starting with VERDICT:, is the result; every text taken from the statement is
    escaped and quoted, so the statement cannot print a line of its own. Exits with status 1 when
    any check fails (a changed publisher key included), naming what changed.
    """
    from app.core.provenance.publishers import known_publishers_path
    from app.core.provenance.verify import KEY_CHANGED, PINNED_GIVEN, PINNED_REMEMBERED, verify_statement
    from app.core.safetext import escape

    from app.core.provenance.checkpoints_seen import seen_path

    result = verify_statement(statement, dataset, ledger_path=ledger_file, public_key=key_file,
                              publishers=None if key_file is not None else known_publishers_path(),
                              checkpoints_seen=seen_path(), consistency=consistency_file)
    pinned = result.trust in (PINNED_GIVEN, PINNED_REMEMBERED)
    label = {PINNED_GIVEN: "PINNED", PINNED_REMEMBERED: "PINNED (remembered)", KEY_CHANGED: "KEY CHANGED"}
    click.echo(f"key: {label.get(result.trust, 'NOT PINNED')}: {escape(result.trust_detail, 600)}")
    for check in result.checks:
        click.echo(f"{'ok    ' if check.ok else 'FAILED'}  {check.name}: {escape(check.detail, 600)}")
    for what, text in result.claims:
        click.echo(f"claim   {what}: {escape(text, 600)}")
    if not result.ok:
        echo_err("verification failed: " + "; ".join(escape(reason, 600) for reason in result.reasons))
        failed = len(result.reasons)
        click.echo(f"{VERDICT_PREFIX} FAILED: {failed} check(s) failed; do not trust this statement")
        raise SystemExit(1)
    ledger_note = ("ledger checked" if ledger_file is not None else
                   "ledger not checked (pass --ledger DB to check that the traced generations are in it)")
    if result.inclusion_summary:
        ledger_note = f"{result.inclusion_summary}; {ledger_note}"
    key_note = "key pinned" if pinned else "key NOT pinned, anyone could have signed this"
    click.echo(f"{VERDICT_PREFIX} {key_note}; {ledger_note}; verified")
