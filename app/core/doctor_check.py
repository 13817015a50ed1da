"""What one doctor check finds: its status and the fix that goes with it.

Qt-free. Kept apart from app/core/doctor.py so that the modules holding groups of checks
(doctor_files, doctor_runtime) and the doctor that runs them all depend on it, not on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OK, INFO, WARN, FAIL = "ok", "info", "warn", "fail"
STATUSES = (OK, INFO, WARN, FAIL)


@dataclass(frozen=True)
class Check:
    """One finding. status: ok, info (worth knowing, not a problem), warn or fail.
    `fix` says what to do when the status is warn or fail."""

    name: str
    status: str
    detail: str
    fix: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
