"""`backup_ledger`: a consistent, self-contained copy taken while another writer keeps appending."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from app.core.store import Ledger
from app.core.store.backup import BackupError, backup_ledger
from app.core.store.events import list_events, verify_events
from tests.core.records import record


def test_backup_holds_rows_still_in_the_wal(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = Ledger.open(path)
    ledger.append_many([record(i) for i in range(1, 51)])
    assert (tmp_path / "ledger.db-wal").stat().st_size > 0  # the rows are not in ledger.db yet
    out = tmp_path / "copies" / "backup.db"
    result = backup_ledger(ledger.db, path, out)
    assert result.generations == 50 and result.head_id == 50
    assert not (tmp_path / "copies" / "backup.db-wal").exists()
    conn = sqlite3.connect(out)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("SELECT count(*) FROM generations").fetchone()[0] == 50
    conn.close()
    copy = Ledger.open(out)
    assert copy.verify().ok and verify_events(copy.db).ok
    copy.close()
    backup_event = list_events(ledger.db, kind="backup")[0]
    assert backup_event.details["generations"] == 50 and backup_event.details["head_hash"] == result.head_hash
    ledger.close()


def test_backup_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = Ledger.open(path)
    ledger.append(record(1))
    out = tmp_path / "backup.db"
    out.write_text("precious")
    with pytest.raises(BackupError, match="already exists"):
        backup_ledger(ledger.db, path, out)
    assert out.read_text() == "precious"
    with pytest.raises(BackupError, match="the ledger itself"):
        backup_ledger(ledger.db, path, path, force=True)
    backup_ledger(ledger.db, path, out, force=True)
    assert sqlite3.connect(out).execute("SELECT count(*) FROM generations").fetchone()[0] == 1
    assert [e.kind for e in list_events(ledger.db)] == ["backup"]  # refusals log nothing
    ledger.close()


def test_backup_while_another_thread_appends_is_consistent(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    Ledger.open(path).close()
    stop = threading.Event()
    appended: list[int] = []

    def writer() -> None:
        ledger = Ledger.open(path)  # its own connection, as the app's writer has
        i = 0
        while not stop.is_set():
            i += 1
            appended.extend(ledger.append_many([record(i * 10 + k) for k in range(5)]))
        ledger.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        main = Ledger.open(path)
        results = []
        while len(results) < 4:
            if len(appended) >= 25 * (len(results) + 1):
                results.append(backup_ledger(main.db, path, tmp_path / f"b{len(results)}.db"))
        main.close()
    finally:
        stop.set()
        thread.join()
    counts = [r.generations for r in results]
    assert counts == sorted(counts) and counts[0] >= 25 and len(appended) > counts[-1] - 1
    for result in results:
        copy = Ledger.open(result.path)
        verified = copy.verify()
        copy.close()
        assert verified.ok and verified.rows == result.generations and verified.head_hash == result.head_hash
