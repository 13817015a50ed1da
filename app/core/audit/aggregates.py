"""Each workflow's judged audit, kept in the ledger (table audit_aggregates) so that it is computed once.

Judging a workflow reads every one of its scored rows (scores, flags, template signatures, a
sample of vectors, sub-streams); at a million generations that is most of a re-audit. The judged
WorkflowAudit is stored with a stamp: the workflow's scored-row count and highest audit_scores
rowid under the scores key (a new or re-scored row changes both, since rows are only ever
inserted or replaced), the embedding model, and a fingerprint of the source of the modules that
judge. A whole audit, and a refresh for the workflows it does not touch, read the stored audit
back while its stamp holds; a workflow whose stamp no longer holds (new rows, another model,
changed judging code, a table from an older version) is judged again from its rows and its
stored audit replaced. What is read back is exactly what was judged: the JSON keeps every value
unrounded, and `load` rebuilds the same dataclasses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from sqlite_utils import Database

from app.core.audit.levels import PatternVerdict
from app.core.audit.signals import WorkflowSignals
from app.core.audit.substreams import SubStreamVerdict
from app.core.store.db import translate_errors
from app.core.store.ledger import utc_now

TABLE = "audit_aggregates"
# The modules whose code decides a workflow's judgement (the library and the scorer are in the scores key).
JUDGING_MODULES = ("aggregates.py", "levels.py", "run.py", "signals.py", "substreams.py", "templates.py",
                   "workflow_state.py")


@dataclass
class WorkflowAudit:
    """One workflow's audit: its signals and a verdict for every pattern."""

    name: str
    generations: int
    signals: WorkflowSignals
    patterns: list[PatternVerdict]
    models: list[dict[str, Any]] = field(default_factory=list)
    substreams: list[SubStreamVerdict] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form documented in docs/audit.md."""
        return {"name": self.name, "generations": self.generations, "signals": self.signals.as_dict(),
                "patterns": [verdict.as_dict() for verdict in self.patterns], "models": self.models,
                "substreams": [group.as_dict() for group in self.substreams]}


Stamp = tuple[int, int]  # scored rows of the workflow, highest audit_scores rowid among them


@cache
def fingerprint() -> str:
    """sha256 of the source of the judging modules: stored audits of other code are judged again."""
    digest = hashlib.sha256()
    for name in JUDGING_MODULES:
        digest.update(name.encode() + b"\0" + (Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()


def live_stamps(db: Database, key: str, workflows: Iterable[str] | None = None) -> dict[str, Stamp]:
    """The stamp of every workflow scored under `key` (or of the named ones), from the
    (scores_key, workflow) index alone."""
    if workflows is None:
        rows = db.execute("SELECT workflow, count(*), max(rowid) FROM audit_scores WHERE scores_key = ? "
                          "GROUP BY workflow", [key]).fetchall()
    else:
        rows = [(name, *db.execute("SELECT count(*), max(rowid) FROM audit_scores WHERE scores_key = ? "
                                   "AND workflow = ?", [key, name]).fetchone()) for name in workflows]
    return {name: (int(count), int(last)) for name, count, last in rows if count}


@dataclass
class Stored:
    """A workflow's row of audit_aggregates: the stamp it was judged at, its audit and running state."""

    stamp: Stamp
    audit: str
    state: str


def load(db: Database, key: str, model: str, names: Iterable[str]) -> dict[str, Stored]:
    """The stored rows of the named workflows judged under `key`, with `model`, by this code."""
    found: dict[str, Stored] = {}
    names = list(names)
    for start in range(0, len(names), 900):
        part = names[start:start + 900]
        for name, rows, last, audit, state in db.execute(
                f"SELECT workflow, rows, last_rowid, audit, state FROM {TABLE} WHERE scores_key = ? AND model = ? "
                f"AND fingerprint = ? AND workflow IN ({','.join('?' for _ in part)})",
                [key, model, fingerprint(), *part]).fetchall():
            found[name] = Stored((rows, last), audit, state)
    return found


def save(db: Database, key: str, model: str, audit: WorkflowAudit, stamp: Stamp, state: Mapping[str, Any]) -> None:
    """Store a judged audit with the stamp of the rows it was judged from and its running state."""
    with translate_errors(TABLE), db.conn:
        db.conn.execute(f"INSERT OR REPLACE INTO {TABLE} (scores_key, workflow, model, fingerprint, rows, last_rowid, "
                        "audit, state, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (key, audit.name, model, fingerprint(), stamp[0], stamp[1], to_json(audit),
                         json.dumps(state, default=_plain, separators=(",", ":")), utc_now()))


def _plain(value: Any) -> Any:  # noqa: ANN401
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in an audit aggregate")


def to_json(audit: WorkflowAudit) -> str:
    """Every field, unrounded (asdict, not the report's as_dict)."""
    return json.dumps(asdict(audit), default=_plain, separators=(",", ":"))


def from_json(text: str) -> WorkflowAudit:
    """The WorkflowAudit that to_json wrote."""
    data = json.loads(text)
    return WorkflowAudit(data["name"], data["generations"], WorkflowSignals(**data["signals"]),
                         [PatternVerdict(**verdict) for verdict in data["patterns"]], data["models"],
                         [SubStreamVerdict(**group) for group in data["substreams"]])
