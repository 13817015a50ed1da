"""`stillroom doctor`: check the installation and the data folder; exit 1 when something is wrong."""

from __future__ import annotations

import json
import sys

from pathlib import Path

import click

from app.core.doctor import Check, DoctorReport, format_check, iter_checks, summary_line
from app.core.generation_probe import PROBE_OPTION, probe_generation

EXIT_PROBLEMS = 1


@click.command("doctor")
@click.option("--quick", is_flag=True, help="Do not hash model files (compare sizes only).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--no-generate", is_flag=True,
              help="Do not generate a few tokens with the default model (saves a few seconds; a crash goes unnoticed).")
@click.option(PROBE_OPTION, "probe", is_flag=True, hidden=True,
              help="Internal: generate a few tokens and print the result as JSON (the doctor runs this in a child).")
@click.option("--model", "probe_model", type=click.Path(dir_okay=False, path_type=Path), default=None, hidden=True)
def doctor(quick: bool, as_json: bool, no_generate: bool, probe: bool, probe_model: Path | None) -> None:
    """Check llama.cpp and the CPU path it takes, a real generation of a few tokens, GPU offload,
    the data folder, the ledger, models, the embedding model and the desktop's Qt libraries.

    Each problem is printed with its fix. Exits 1 when a check failed (warnings do not count).
    """
    if probe:
        click.echo(json.dumps(probe_generation(probe_model)))
        return
    checks: list[Check] = []
    for check in iter_checks(quick=quick, generate=not no_generate):
        checks.append(check)
        if not as_json:
            click.echo(format_check(check))
    report = DoctorReport(checks)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(summary_line(report))
    if not report.ok:
        sys.exit(EXIT_PROBLEMS)
