"""`stillroom usage`: generations, tokens and generation time per model, workflow and source."""

from __future__ import annotations

import json

import click

from app.core.store import Ledger
from app.core.store.usage import DIMENSIONS, WINDOWS, UsageGroup, UsageTotals, UsageWindow, usage_report
from app.cli.common import echo_err, terminal_safe, with_ledger

LABEL_WIDTH = 34


def _window_title(window: UsageWindow) -> str:
    return "all time" if window.days is None else f"last {window.days} days"


def _seconds(ms: float) -> str:
    seconds = ms / 1000
    return f"{seconds:,.1f} s" if seconds < 3600 else f"{seconds / 3600:,.1f} h"


def _line(label: str, totals: UsageTotals) -> str:
    label = terminal_safe(label)
    if len(label) > LABEL_WIDTH:
        label = label[: LABEL_WIDTH - 1] + "…"
    return (f"  {label:<{LABEL_WIDTH}} {totals.generations:>9,} {totals.prompt_tokens:>12,} "
            f"{totals.completion_tokens:>12,} {_seconds(totals.duration_ms):>11}")


def _header(title: str) -> str:
    return f"  {title:<{LABEL_WIDTH}} {'gens':>9} {'prompt tok':>12} {'compl. tok':>12} {'gen. time':>11}"


@click.command("usage")
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="Only the last N days (UTC); default: 7, 30 and 90 days and all time.")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@with_ledger
def usage(ledger: Ledger, days: int | None, as_json: bool) -> None:
    """Usage statistics: generations, tokens and time per model, per workflow and per source.

    Without --days, totals for the last 7, 30 and 90 days and all time, and the breakdowns for
    all time; with --days N, the totals and breakdowns of the last N days.
    """
    windows = usage_report(ledger.db, WINDOWS if days is None else (days,))
    if as_json:
        click.echo(json.dumps({window.name: window.to_dict() for window in windows}, ensure_ascii=False, indent=2))
        return
    widest = windows[-1]
    if widest.totals.generations == 0:
        echo_err("no generations logged" + ("" if days is None else f" in the last {days} days"))
        return
    click.echo(_header("period"))
    for window in windows:
        click.echo(_line(_window_title(window), window.totals))
    groups: dict[str, list[UsageGroup]] = widest.groups
    for dimension in DIMENSIONS:
        click.echo("")
        click.echo(_header(f"per {dimension} ({_window_title(widest)})"))
        for group in groups[dimension]:
            click.echo(_line(group.label, group.totals))
