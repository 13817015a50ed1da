"""`stillroom doctor`: check the installation and the data folder; exit 1 when something is wrong."""

from __future__ import annotations

import json
import sys

import click

from app.core.doctor import Check, DoctorReport, format_check, iter_checks, summary_line

EXIT_PROBLEMS = 1


@click.command("doctor")
@click.option("--quick", is_flag=True, help="Do not hash model files (compare sizes only).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def doctor(quick: bool, as_json: bool) -> None:
    """Check llama.cpp, GPU offload, the data folder, the ledger, models and the embedding model.

    Each problem is printed with its fix. Exits 1 when a check failed (warnings do not count).
    """
    checks: list[Check] = []
    for check in iter_checks(quick=quick):
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
