"""open_db(): WAL mode, migrations on an empty database and an upgrade from the first schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from app.core.errors import LedgerError
from app.core.store import Ledger, open_db
from app.core.store.migrations import MIGRATION_SET, migrations
from app.core.store.queries import LogFilter, list_generations
from tests.core.records import record


def applied_names(db: Database) -> list[str]:
    return [m.name for m in migrations.applied(db)]


def test_empty_database_gets_every_migration_and_wal(tmp_path: Path) -> None:
    db = open_db(tmp_path / "ledger.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert applied_names(db) == [m.name for m in migrations._migrations]
    assert {"generations", "generations_fts", "models", "model_files", "ledger_head", "conversations"} <= set(
        db.table_names())
    rows = db.execute("SELECT migration_set, name FROM _sqlite_migrations").fetchall()
    assert all(row[0] == MIGRATION_SET for row in rows)
    db.close()
    # Reopening applies nothing twice.
    again = open_db(tmp_path / "ledger.db")
    assert len(again.execute("SELECT * FROM _sqlite_migrations").fetchall()) == len(rows)
    again.close()


def test_upgrade_from_first_schema_keeps_rows_and_chain(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = open_db(path, migrate=False)
    migrations.apply(old, stop_before="m002_generations_fts")
    assert applied_names(old) == ["m001_initial"]
    assert "generations_fts" not in old.table_names()
    ids = Ledger(old, path).append_many([record(i) for i in range(1, 6)])
    assert ids == [1, 2, 3, 4, 5]
    old.close()

    ledger = Ledger.open(path)
    assert applied_names(ledger.db)[-1] == migrations._migrations[-1].name
    found = list_generations(ledger.db, LogFilter(search="item 3"))
    assert [row["id"] for row in found] == [3]  # rows written before the FTS index are searchable
    assert ledger.verify().ok
    ledger.append(record(6))
    assert ledger.verify().rows == 6
    ledger.close()


def test_audit_scores_key_column_renamed_on_a_ledger_of_the_previous_schema(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = open_db(path, migrate=False)
    migrations.apply(old, stop_before="m012_audit_scores_key")
    assert applied_names(old)[-1] == "m011_merkle_tree"
    Ledger(old, path).append_many([record(i) for i in range(1, 3)])
    old["audit_scores"].insert_all([{"generation_id": i, "library_hash": "k" * 64, "workflow": "tests",
                                     "scores": "[0.1]", "evidence": "{}", "flags": 0} for i in (1, 2)])
    old.close()

    ledger = Ledger.open(path)
    table = ledger.db["audit_scores"]
    assert "m012_audit_scores_key" in applied_names(ledger.db)
    assert "scores_key" in table.columns_dict and "library_hash" not in table.columns_dict
    assert table.pks == ["generation_id", "scores_key"]
    assert {i.name: i.columns for i in table.indexes if not i.name.startswith("sqlite_")} == {
        "idx_audit_scores_scores_key_workflow": ["scores_key", "workflow"],
        **{f"idx_audit_scores_workflow_{c}": ["scores_key", "workflow", c]
           for c in ("started_at", "skeleton", "prefix_sig", "suffix_sig")}}
    found = ledger.db.execute("SELECT generation_id, scores FROM audit_scores WHERE scores_key = ? AND workflow = ? "
                              "ORDER BY generation_id", ["k" * 64, "tests"]).fetchall()
    assert found == [(1, "[0.1]"), (2, "[0.1]")]  # the stored scores are kept, under the new name
    assert ledger.verify().ok
    ledger.close()


def test_file_that_is_not_a_database_gives_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(LedgerError) as info:
        open_db(path)
    assert str(path) in str(info.value) and "not a valid SQLite database" in str(info.value)


def test_locked_database_gives_clear_error_and_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ledger.db"
    ledger = Ledger.open(path)
    ledger.append(record(1))
    blocker = sqlite3.connect(path)
    blocker.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr("app.core.store.db.BUSY_TIMEOUT_MS", 200)
    ledger.db.execute("PRAGMA busy_timeout = 200")
    with pytest.raises(LedgerError) as info:
        ledger.append(record(2))
    assert "locked" in str(info.value) and str(path) in str(info.value)
    blocker.rollback()
    blocker.close()
    ledger.append(record(3))
    result = ledger.verify()
    assert result.ok and result.rows == 2
    ledger.close()


def test_readonly_reader_sees_committed_rows(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = Ledger.open(path)
    ledger.append_many([record(i) for i in range(3)])
    reader = open_db(path, readonly=True)
    assert reader.execute("SELECT count(*) FROM generations").fetchone()[0] == 3
    with pytest.raises(sqlite3.OperationalError):
        reader.execute("DELETE FROM generations")
    reader.close()
    ledger.close()


def test_two_processes_creating_the_same_ledger_at_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "race.db"
    code = ("import sys; from app.core.store import Ledger; from tests.core.records import record; "
            "l = Ledger.open(sys.argv[1]); [l.append(record(i)) for i in range(20)]; l.close()")
    repo = Path(__file__).resolve().parents[2]
    runs = [subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=repo, stderr=subprocess.PIPE, text=True)
            for _ in range(4)]
    errors = [run.communicate(timeout=120)[1] for run in runs]
    assert all(run.returncode == 0 for run in runs), errors
    ledger = Ledger.open(path)
    result = ledger.verify()
    ledger.close()
    assert result.ok and result.rows == 80
