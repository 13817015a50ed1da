"""Usage statistics: generations, tokens and generation time per model, workflow and source over
the last N days and all time.

Read from `usage_daily`, the per-day aggregate a trigger keeps on every generation insert (see
schema.py): one row per day and model, workflow or source, so a report reads a few thousand rows a
year whatever the size of the log. Days are UTC calendar days; "the last 7 days" is today and the 6 before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlite_utils import Database

from app.core.store.db import translate_errors
from app.core.store.schema import USAGE_DAILY_TABLE

WINDOWS: tuple[int | None, ...] = (7, 30, 90, None)  # None: all time
DIMENSIONS = ("model", "workflow", "source")
TOTALS_DIMENSION = "source"  # every generation has exactly one source: its rows sum to the totals
_SUMS = ("sum(generations), sum(errors), sum(prompt_tokens), sum(completion_tokens), sum(duration_ms)")
NO_WORKFLOW = "(no workflow)"
UNKNOWN_MODEL = "(unknown model)"


@dataclass(frozen=True)
class UsageTotals:
    """Sums over a set of generations; duration_ms is the time spent generating."""

    generations: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    duration_ms: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_tokens": self.total_tokens}


@dataclass(frozen=True)
class UsageGroup:
    """One model, workflow or source: `key` as stored (sha256, workflow name, source), `label` for people."""

    key: str
    label: str
    totals: UsageTotals

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, **self.totals.to_dict()}


@dataclass(frozen=True)
class UsageWindow:
    """Usage over the last `days` days (None: all time) since `since` (None: from the first row)."""

    days: int | None
    since: str | None
    totals: UsageTotals
    groups: dict[str, list[UsageGroup]] = field(default_factory=dict)  # dimension -> groups, most tokens first
    daily: list[tuple[str, UsageTotals]] = field(default_factory=list)  # (UTC day, totals), oldest first

    @property
    def name(self) -> str:
        return "all" if self.days is None else f"{self.days}d"

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": self.days, "since": self.since, "totals": self.totals.to_dict(),
            **{f"by_{dim}": [group.to_dict() for group in groups] for dim, groups in self.groups.items()},
            "daily": [{"day": day, **totals.to_dict()} for day, totals in self.daily],
        }


def utc_today() -> date:
    """Today's UTC date, the calendar the ledger's days are counted in."""
    return datetime.now(timezone.utc).date()


def window_start(days: int | None, today: date) -> str | None:
    """The first UTC day (ISO) of the last `days` days ending `today`; None for all time."""
    if days is None:
        return None
    if days < 1:
        raise ValueError(f"a usage window needs at least 1 day, got {days}")
    return (today - timedelta(days=days - 1)).isoformat()


def usage_window(db: Database, days: int | None, *, today: date | None = None, daily: bool = True) -> UsageWindow:
    """Usage over the last `days` days ending `today` (UTC; None: all time), with per-model,
    per-workflow and per-source groups and, when `daily`, the per-day series."""
    since = window_start(days, today or utc_today())
    where, params = ("AND day >= ?", [since]) if since else ("", [])
    with translate_errors(USAGE_DAILY_TABLE):
        totals = _totals(db.execute(f"SELECT {_SUMS} FROM {USAGE_DAILY_TABLE} WHERE dimension = ? {where}",
                                    [TOTALS_DIMENSION, *params]).fetchone())
        groups = {dim: _groups(db, dim, where, params) for dim in DIMENSIONS}
        series = []
        if daily:
            rows = db.execute(f"SELECT day, {_SUMS} FROM {USAGE_DAILY_TABLE} WHERE dimension = ? {where} "
                              "GROUP BY day ORDER BY day", [TOTALS_DIMENSION, *params]).fetchall()
            series = [(row[0], _totals(row[1:])) for row in rows]
    return UsageWindow(days, since, totals, groups, series)


def usage_report(db: Database, windows: Sequence[int | None] = WINDOWS, *,
                 today: date | None = None) -> list[UsageWindow]:
    """One UsageWindow per entry of `windows` (7, 30, 90 days and all time by default); the daily
    series only for the widest of them."""
    today = today or utc_today()
    widest = None if None in windows else max(w for w in windows if w is not None)
    return [usage_window(db, days, today=today, daily=days == widest) for days in windows]


def _groups(db: Database, dimension: str, where: str, params: list[Any]) -> list[UsageGroup]:
    rows = db.execute(
        f"SELECT key, max(label), {_SUMS} FROM {USAGE_DAILY_TABLE} WHERE dimension = ? {where} GROUP BY key",
        [dimension, *params]).fetchall()
    groups = [UsageGroup(row[0], _label(dimension, row[0], row[1]), _totals(row[2:])) for row in rows]
    groups.sort(key=lambda g: (-g.totals.total_tokens, -g.totals.generations, g.label))
    return groups


def _label(dimension: str, key: str, name: str | None) -> str:
    if dimension == "model":
        if not key:
            return UNKNOWN_MODEL
        return f"{name} · {key[:8]}" if name else key[:12]
    if dimension == "workflow":
        return key or NO_WORKFLOW
    return key


def _totals(values: Sequence[Any]) -> UsageTotals:
    generations, errors, prompt, completion, duration = (v or 0 for v in values)
    return UsageTotals(int(generations), int(errors), int(prompt), int(completion), float(duration))
