"""Each workflow's running aggregates (app.core.audit.workflow_state) and its stored audit
(app.core.audit.aggregates), on a real ledger with real embeddings: new rows folded into the
aggregates give exactly what building them from every row gives, and an audit that reads stored
aggregates back is the audit judged from scratch."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from app.core.audit import workflow_state
from app.core.audit.embeddings import Encoder
from app.core.audit.patterns import load_library
from app.core.audit.run import AuditResult, run_audit
from app.core.audit.scorer import scores_key
from app.core.progress import drive
from app.core.store import Ledger
from tests.core.audit_workflows import BENIGN_WORKFLOWS, PATTERN_WORKFLOWS
from tests.core.records import record

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def encoder(embedding_store: Path) -> Encoder:
    return Encoder(export_dir=embedding_store)


def _dicts(result: AuditResult) -> dict[str, dict]:
    return {w.name: w.as_dict() for w in result.workflows}


def _at(minutes: float) -> str:
    return (START + timedelta(minutes=minutes)).isoformat(timespec="microseconds")


def _rows(first: int, count: int, minute: float) -> list[dict]:
    """Rows of two workflows: graded answers (templated: they share skeletons and first words) and
    coding help (free text), `minute` apart."""
    grader, coding = PATTERN_WORKFLOWS["autograding"], BENIGN_WORKFLOWS["coding help"]
    rows = []
    for i in range(first, first + count):
        if i % 3:
            rows.append(record(i, workflow="grader", prompt=grader[i % len(grader)], started_at=_at(i * minute)))
        else:
            rows.append(record(i, workflow="coding", prompt=f"{coding[i % len(coding)]} (case {i // len(coding)})",
                               started_at=_at(i * minute)))
    return rows


def _stored_states(ledger: Ledger) -> dict[str, dict]:
    rows = ledger.db.execute("SELECT workflow, state FROM audit_aggregates").fetchall()
    return {name: {k: v for k, v in json.loads(state).items() if k != "cache"} for name, state in rows}


def _built(ledger: Ledger, key: str, patterns: int, names) -> dict[str, dict]:  # noqa: ANN001
    built = {name: workflow_state.build(ledger.db, key, name, patterns) for name in names}
    return {name: json.loads(json.dumps({k: v for k, v in state.items() if k != "cache"})) for name, state in built.items()}


def test_folded_aggregates_equal_built_ones_and_the_audit_equals_one_judged_from_scratch(
        tmp_path: Path, encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    # small samples, so that these few rows exercise the sampled paths a large workflow takes
    monkeypatch.setattr(workflow_state, "SAMPLE", 24)
    monkeypatch.setattr(workflow_state, "DIVERSITY_SAMPLE", 12)
    monkeypatch.setattr(workflow_state, "GRID_SAMPLE", 6)
    ledger = Ledger.open(tmp_path / "ledger.db")
    library = load_library()
    key, patterns = scores_key(library), len(library.pattern_ids)
    ledger.append_many(_rows(0, 45, 2.0))
    first = drive(run_audit(ledger.db, encoder, library))
    assert first is not None and {w.name for w in first.workflows} == {"grader", "coding"}
    rounds = [
        _rows(45, 9, 2.0),  # in order, the ledger's own time format: the busiest hour is folded
        [record(60, workflow="grader", prompt=PATTERN_WORKFLOWS["autograding"][3], started_at=_at(1.0))],  # earlier
        [record(61, workflow="coding", prompt="Why does my Rust borrow checker reject this loop?",
                started_at="2026-03-02T12:30:00+02:00")],  # another offset: string order is not time order
        _rows(62, 30, 0.5),  # a burst
    ]
    built, build = [], workflow_state.build
    monkeypatch.setattr(workflow_state, "build", lambda db, k, name, n: built.append(name) or build(db, k, name, n))
    for new in rounds:
        ledger.append_many(new)
        built.clear()
        folded = drive(run_audit(ledger.db, encoder, library))
        assert folded is not None and folded.newly_scored == len(new)
        assert built == []  # every workflow with new rows was folded, none built again
        states = _stored_states(ledger)
        assert states == _built(ledger, key, patterns, states)
        with ledger.db.conn:
            ledger.db.execute("DELETE FROM audit_aggregates")
        scratch = drive(run_audit(ledger.db, encoder, library))
        assert scratch is not None and _dicts(folded) == _dicts(scratch)
    grader = next(w for w in scratch.workflows if w.name == "grader")
    assert grader.generations > workflow_state.SAMPLE and grader.signals.template_reuse_share > 0.5
    assert grader.signals.rate_per_hour >= 30  # the burst
    ledger.close()


def test_a_stored_audit_is_read_back_while_its_stamp_holds(tmp_path: Path, encoder: Encoder) -> None:
    ledger = Ledger.open(tmp_path / "ledger.db")
    library = load_library()
    ledger.append_many(_rows(0, 12, 1.0))
    first = drive(run_audit(ledger.db, encoder, library))
    assert first is not None
    stored = dict(ledger.db.execute("SELECT workflow, updated_at FROM audit_aggregates").fetchall())
    again = drive(run_audit(ledger.db, encoder, library))
    assert again is not None and _dicts(again) == _dicts(first)
    assert dict(ledger.db.execute("SELECT workflow, updated_at FROM audit_aggregates").fetchall()) == stored
    # another judging code (or model) does not read it back: the workflow is judged again, the same
    with ledger.db.conn:
        ledger.db.execute("UPDATE audit_aggregates SET fingerprint = 'older code'")
    third = drive(run_audit(ledger.db, encoder, library))
    assert third is not None and _dicts(third) == _dicts(first)
    assert ledger.db.execute("SELECT count(*) FROM audit_aggregates WHERE fingerprint = 'older code'").fetchone()[0] == 0
    ledger.close()


def test_a_first_audit_scores_the_ledger_a_slice_at_a_time(tmp_path: Path, encoder: Encoder,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.audit import run

    monkeypatch.setattr(run, "STREAM_ROWS", 4)
    ledger = Ledger.open(tmp_path / "ledger.db")
    library = load_library()
    ledger.append_many(_rows(0, 10, 1.0))
    steps = run_audit(ledger.db, encoder, library)
    scoring = []
    try:
        while True:
            item = next(steps)
            if item.stage == "scoring":
                scoring.append((item.done, item.total))
    except StopIteration as stop:
        result = stop.value
    assert result is not None and result.newly_scored == 10 and sum(w.generations for w in result.workflows) == 10
    # three slices (4, 4, 2), progress over all ten rows
    assert scoring == [(4, 10), (8, 10), (10, 10)]
    ledger.close()
