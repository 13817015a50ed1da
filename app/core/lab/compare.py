"""Step 3, compare: what the student learned for what it cost, and how the collection looks to the audit.

The learning curve comes from the student step. This step adds the audit: it runs the ordinary
incremental audit on every lab workflow in the ledger (lab:<style>, one per style ever run), so
each style's per-pattern levels can be set side by side, the style of this run first.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

from sqlite_utils import Database

from app.core.audit.embeddings import Encoder
from app.core.audit.patterns import PatternLibrary
from app.core.audit.run import AuditResult, WorkflowAudit, run_audit
from app.core.cancel import NEVER, CancelToken
from app.core.lab.student import CurvePoint, StudentResult
from app.core.lab.teacher import TeacherResult
from app.core.progress import Progress

LAB_PREFIX = "lab:"


@dataclass
class CompareResult:
    """The learning curve, the headline numbers and the lab workflows' audit."""

    style: str
    points: list[CurvePoint]
    audit: AuditResult
    workflows: list[WorkflowAudit] = field(default_factory=list)

    @property
    def final(self) -> CurvePoint:
        """The point with the most samples."""
        return self.points[-1]

    def levels(self) -> dict[str, dict[str, str]]:
        """workflow -> pattern id -> level, for the lab workflows."""
        return {w.name: {v.id: v.level for v in w.patterns} for w in self.workflows}


def lab_workflows(db: Database) -> list[str]:
    """The lab workflows in the ledger (lab:<style>), sorted."""
    return [row[0] for row in db.execute(
        "SELECT DISTINCT workflow FROM generations WHERE workflow LIKE ? ORDER BY workflow",
        [LAB_PREFIX + "%"]).fetchall()]


def run_compare(db: Database, encoder: Encoder, library: PatternLibrary, teacher: TeacherResult,
                student: StudentResult, cancel: CancelToken = NEVER) -> Generator[Progress, None, CompareResult | None]:
    """Audit the lab workflows (writing embeddings and scores through `db`, a connection of the
    caller's thread); yields the audit's Progress, returns the CompareResult (None when cancelled)."""
    names = lab_workflows(db)
    if teacher.workflow not in names:
        names.append(teacher.workflow)
    result = yield from run_audit(db, encoder, library, names, cancel)
    if result is None or cancel.cancelled:
        return None
    ordered = sorted(result.workflows, key=lambda w: (w.name != teacher.workflow, w.name))
    return CompareResult(teacher.style, student.points, result, ordered)
