"""What a lab run holds: its settings and the result of each step done so far."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from app.core.lab.compare import CompareResult
from app.core.lab.student import StudentResult
from app.core.lab.styles import DEFAULT_STYLE, check_style
from app.core.lab.tasks import LabError, TaskSet
from app.core.lab.teacher import TeacherResult

DEFAULT_SAMPLES = 32
DEFAULT_SEED = 7


@dataclass(frozen=True)
class LabConfig:
    """The lab's settings: collection style, teacher samples per task (the curve's last point), seed."""

    style: str = DEFAULT_STYLE
    samples: int = DEFAULT_SAMPLES
    seed: int = DEFAULT_SEED

    def check(self, tasks: TaskSet) -> LabConfig:
        """Self, or LabError naming the setting that cannot work."""
        check_style(self.style)
        if not 0 <= self.seed < 2**31:
            raise LabError(f"--seed must be between 0 and 2**31-1, got {self.seed}")
        tasks.split(self.samples, self.seed)  # raises on too few or too many samples
        return self


def new_run_id(config: LabConfig) -> str:
    """An id for one lab run (kept in each teacher call's meta): UTC time, style and seed."""
    return f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}-{config.style}-{config.seed}"


@dataclass
class LabState:
    """A lab run: its settings and each step's result once that step has finished."""

    config: LabConfig
    run_id: str
    teacher: TeacherResult | None = None
    student: StudentResult | None = None
    compare: CompareResult | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The numbers of the run as plain JSON-ready data."""
        data: dict[str, Any] = {"run": self.run_id, "style": self.config.style, "samples": self.config.samples,
                                "seed": self.config.seed,
                                "timings_s": {k: round(v, 2) for k, v in self.timings.items()}}
        if self.teacher is not None:
            data["teacher"] = {"workflow": self.teacher.workflow, "calls": self.teacher.calls,
                               "tokens": self.teacher.tokens, "seconds": round(self.teacher.seconds, 2),
                               "answered": sum(a.label is not None for a in self.teacher.answers),
                               "generation_ids": [self.teacher.answers[0].generation_id,
                                                  self.teacher.answers[-1].generation_id]
                               if self.teacher.answers else []}
        if self.student is not None:
            data["curve"] = [point.as_dict() for point in self.student.points]
            data["held_out"] = self.student.held_out
        if self.compare is not None:
            data["audit"] = self.compare.levels()
        return data

    def to_json(self) -> str:
        """summary() as indented JSON."""
        return json.dumps(self.summary(), indent=2)
