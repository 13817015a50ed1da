"""The incremental refresh of a shown audit (app.core.audit.refresh), on a real ledger with real
embeddings: it reads only the generations after the previous run, re-judges only their workflows,
and ends where a whole new audit ends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.core.audit.embeddings import Encoder
from app.core.audit.map_data import build_map
from app.core.audit.patterns import load_library
from app.core.audit.projection import ProjectionStore
from app.core.audit.refresh import can_refresh, refresh_audit
from app.core.audit.run import AuditResult, run_audit
from app.core.progress import drive
from app.core.store import Ledger
from tests.core.audit_workflows import BENIGN_WORKFLOWS, PATTERN_WORKFLOWS
from tests.core.records import record


@pytest.fixture(scope="module")
def encoder(embedding_store: Path) -> Encoder:
    return Encoder(export_dir=embedding_store)


def _levels(result: AuditResult) -> dict[str, dict[str, str]]:
    return {w.name: {v.id: v.level for v in w.patterns} for w in result.workflows}


def _dicts(result: AuditResult) -> dict[str, dict]:
    return {w.name: w.as_dict() for w in result.workflows}


def test_a_refresh_folds_new_rows_in_and_matches_a_whole_audit(tmp_path: Path, encoder: Encoder) -> None:
    ledger = Ledger.open(tmp_path / "ledger.db")
    library = load_library()
    store = ProjectionStore(tmp_path)
    grader, coding = PATTERN_WORKFLOWS["autograding"], BENIGN_WORKFLOWS["coding help"]
    ledger.append_many([record(i, workflow="grader", prompt=p) for i, p in enumerate(grader[:8])]
                       + [record(100 + i, workflow="coding", prompt=p) for i, p in enumerate(coding[:8])])
    result = drive(run_audit(ledger.db, encoder, library))
    assert result is not None and result.scored_through == 16
    map_data = drive(build_map(ledger.db, encoder, library, store, "pca", result))
    assert map_data is not None and can_refresh(result, map_data, store)
    untouched = next(w for w in result.workflows if w.name == "coding")
    old_levels, old_groups = list(map_data.levels), list(map_data.groups)
    # new rows in one workflow, and a workflow that did not exist
    ledger.append_many([record(200 + i, workflow="grader", prompt=p) for i, p in enumerate(grader[8:12])]
                       + [record(300, workflow="newcomer", prompt=BENIGN_WORKFLOWS["translation"][0])])
    refreshed = drive(refresh_audit(ledger.db, encoder, library, store, result, map_data))
    assert refreshed is not None and refreshed.new_rows == 5 and refreshed.workflows_judged == ["grader", "newcomer"]
    assert refreshed.result.newly_scored == 5 and refreshed.result.scored_through == 21
    # the workflow with nothing new is the very object of the previous result, not re-read
    assert next(w for w in refreshed.result.workflows if w.name == "coding") is untouched
    whole = drive(run_audit(ledger.db, encoder, library))
    assert whole is not None and whole.newly_scored == 0
    assert _dicts(refreshed.result) == _dicts(whole) and _levels(refreshed.result) == _levels(whole)
    # the refresh folded the new rows into the stored running aggregates; judged again from every row
    # (nothing stored), the audit is the same
    with ledger.db.conn:
        ledger.db.execute("DELETE FROM audit_aggregates")
    rebuilt = drive(run_audit(ledger.db, encoder, library))
    assert rebuilt is not None and _dicts(rebuilt) == _dicts(refreshed.result)
    # the map: old points where they were, the new ones appended, the same as a map built from scratch
    new_map = refreshed.map
    assert new_map.generation_ids == map_data.generation_ids + list(range(17, 22))
    # appended to the map's columns, not copied, and the map shown before sees what it saw
    assert all(getattr(new_map, name).shares(getattr(map_data, name))
               for name in ("generation_ids", "workflows", "top_patterns", "excerpts", "models"))
    assert len(map_data.generation_ids) == len(map_data.levels) == len(map_data.groups) == 16
    assert map_data.levels == old_levels and map_data.groups == old_groups
    assert np.allclose(new_map.points[:16], map_data.points)
    full_map = drive(build_map(ledger.db, encoder, library, store, "pca", whole))
    assert full_map is not None and full_map.generation_ids == new_map.generation_ids
    assert np.allclose(full_map.points, new_map.points) and full_map.levels == new_map.levels
    assert full_map.workflows == new_map.workflows and np.allclose(full_map.scores, new_map.scores)
    assert full_map.groups == new_map.groups and len(new_map.groups) == len(new_map.generation_ids)
    # nothing new: nothing scored, nothing re-judged
    again = drive(refresh_audit(ledger.db, encoder, library, store, refreshed.result, new_map))
    assert again is not None and again.new_rows == 0 and again.workflows_judged == []
    assert again.result.workflows == refreshed.result.workflows and again.map.generation_ids == new_map.generation_ids
    ledger.close()


def test_an_audit_of_some_workflows_cannot_be_refreshed(tmp_path: Path, encoder: Encoder) -> None:
    ledger = Ledger.open(tmp_path / "ledger.db")
    library = load_library()
    ledger.append_many([record(i, workflow="w", prompt=p) for i, p in enumerate(BENIGN_WORKFLOWS["coding help"][:3])])
    result = drive(run_audit(ledger.db, encoder, library, workflows=["w"]))
    assert result is not None and result.scored_through is None
    map_data = drive(build_map(ledger.db, encoder, library, ProjectionStore(tmp_path), "pca", result))
    assert map_data is not None and not can_refresh(result, map_data, ProjectionStore(tmp_path))
    with pytest.raises(ValueError, match="run the whole audit"):
        drive(refresh_audit(ledger.db, encoder, library, ProjectionStore(tmp_path), result, map_data))
    ledger.close()


def test_a_workflow_that_changes_level_recolours_its_old_points(tmp_path: Path, encoder: Encoder) -> None:
    """New rows that raise a workflow's level change the level of its points already on the map
    (and of no other workflow's), as a map built from scratch has them."""
    ledger = Ledger.open(tmp_path / "ledger.db")
    library, store = load_library(), ProjectionStore(tmp_path)
    grader, coding = PATTERN_WORKFLOWS["autograding"], BENIGN_WORKFLOWS["coding help"]
    ledger.append_many([record(i, workflow="mixed", prompt=p) for i, p in enumerate([*coding[:10], *grader[:2]])]
                       + [record(50 + i, workflow="other", prompt=p) for i, p in enumerate(grader[2:6])])
    result = drive(run_audit(ledger.db, encoder, library))
    map_data = drive(build_map(ledger.db, encoder, library, store, "pca", result))
    before = list(map_data.levels)
    ledger.append_many([record(100 + i, workflow="mixed", prompt=p) for i, p in enumerate(grader[6:20])])
    refreshed = drive(refresh_audit(ledger.db, encoder, library, store, result, map_data))
    assert _levels(refreshed.result)["mixed"] != _levels(result)["mixed"]  # the new rows moved its levels
    n = len(before)
    changed = [i for i in range(n) if refreshed.map.levels[i] != before[i]]
    assert changed and all(map_data.workflows[i] == "mixed" for i in changed)
    assert list(map_data.levels) == before  # the map shown before is untouched
    whole = drive(run_audit(ledger.db, encoder, library))
    full_map = drive(build_map(ledger.db, encoder, library, store, "pca", whole))
    assert full_map.levels == refreshed.map.levels and full_map.groups == refreshed.map.groups
    ledger.close()
