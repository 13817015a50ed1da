"""`stillroom doctor`: check the installation and the data folder; exit 1 when something is wrong."""

from __future__ import annotations

import json
import sys

import click

from app.core.doctor import FAIL, INFO, OK, WARN, Check, DoctorReport, iter_checks

EXIT_PROBLEMS = 1
_LABELS = {OK: "ok", INFO: "info", WARN: "WARN", FAIL: "FAIL"}


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
        click.echo(summary(report))
    if not report.ok:
        sys.exit(EXIT_PROBLEMS)


def format_check(check: Check) -> str:
    """One check as a line (and a `fix:` line for warnings and failures)."""
    line = f"{_LABELS[check.status]:<5} {check.name}: {check.detail}"
    if check.fix and check.status in (WARN, FAIL):
        line += f"\n      fix: {check.fix}"
    return line


def summary(report: DoctorReport) -> str:
    """The closing line: all well, or how many problems and warnings."""
    if report.ok and not report.warnings:
        return "All checks passed."
    parts = []
    if report.failures:
        parts.append(f"{len(report.failures)} problem{'s' if len(report.failures) != 1 else ''}")
    if report.warnings:
        parts.append(f"{len(report.warnings)} warning{'s' if len(report.warnings) != 1 else ''}")
    return ", ".join(parts) + " (see the fix under each)."
