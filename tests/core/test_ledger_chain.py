"""The hash chain: every kind of tampering with plain sqlite3 is detected and the right row named."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from app.core.store import Ledger
from app.core.store.chain import row_hash
from app.core.store.schema import GENERATION_COLUMNS, GENESIS_HASH
from tests.core.records import record

ROWS = 8


@pytest.fixture
def chained(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    ledger = Ledger.open(path)
    ledger.append_many([record(i) for i in range(1, ROWS + 1)])
    ledger.close()
    return path


def verify(path: Path):
    ledger = Ledger.open(path)
    try:
        return ledger.verify()
    finally:
        ledger.close()


def tamper(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    for sql in statements:
        conn.execute(sql)
    conn.commit()
    conn.close()


def read_row(path: Path, rid: int) -> dict:
    conn = sqlite3.connect(path)
    values = conn.execute(f"SELECT {', '.join(GENERATION_COLUMNS)} FROM generations WHERE id = ?", (rid,)).fetchone()
    conn.close()
    return dict(zip(GENERATION_COLUMNS, values))


def insert_row(path: Path, row: dict) -> None:
    conn = sqlite3.connect(path)
    conn.execute(f"INSERT INTO generations ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))
    conn.commit()
    conn.close()


def test_intact_chain_reports_head(chained: Path) -> None:
    result = verify(chained)
    assert result.ok and result.rows == ROWS and result.head_id == ROWS
    assert result.head_hash == read_row(chained, ROWS)["row_hash"]
    assert read_row(chained, 1)["prev_hash"] == GENESIS_HASH


def test_hash_covers_every_column_and_links(chained: Path) -> None:
    first, second = read_row(chained, 1), read_row(chained, 2)
    assert row_hash(first) == first["row_hash"]
    assert second["prev_hash"] == first["row_hash"]


@pytest.mark.parametrize("column,value", [("response", "'a quieter answer'"), ("params", "'{}'"),
                                          ("model_sha256", "'b'"), ("started_at", "'2020-01-01'"),
                                          ("seed", "99"), ("status", "'error'")])
def test_edit_is_detected_at_that_row(chained: Path, column: str, value: str) -> None:
    tamper(chained, f"UPDATE generations SET {column} = {value} WHERE id = 5")
    result = verify(chained)
    assert not result.ok and result.bad_id == 5 and "edited" in result.problem
    assert result.rows == 4


def test_edit_with_recomputed_hash_is_detected_at_next_row(chained: Path) -> None:
    row = read_row(chained, 4)
    row["response"] = "rewritten"
    forged = row_hash(row)
    tamper(chained, f"UPDATE generations SET response = 'rewritten', row_hash = '{forged}' WHERE id = 4")
    result = verify(chained)
    assert not result.ok and result.bad_id == 5


def test_deleted_middle_row_is_named(chained: Path) -> None:
    tamper(chained, "DELETE FROM generations WHERE id = 3")
    result = verify(chained)
    assert not result.ok and result.bad_id == 3 and "removed" in result.problem


def test_deleted_last_row_is_detected_through_the_head(chained: Path) -> None:
    tamper(chained, f"DELETE FROM generations WHERE id = {ROWS}")
    result = verify(chained)
    assert not result.ok and result.bad_id == ROWS and "removed" in result.problem


def test_deleted_everything_is_detected(chained: Path) -> None:
    tamper(chained, "DELETE FROM generations")
    result = verify(chained)
    assert not result.ok and "all rows were removed" in result.problem


def test_row_inserted_in_the_middle_is_named(chained: Path) -> None:
    # Make room by renumbering rows 4.. upwards, then forge a row 4 that links correctly to row 3.
    conn = sqlite3.connect(chained)
    for rid in range(ROWS, 3, -1):
        conn.execute("UPDATE generations SET id = ? WHERE id = ?", (rid + 1, rid))
    conn.commit()
    conn.close()
    forged = read_row(chained, 3) | {"id": 4, "uuid": "forged", "response": "an answer nobody generated"}
    forged["prev_hash"] = read_row(chained, 3)["row_hash"]
    forged["row_hash"] = row_hash(forged)
    insert_row(chained, forged)
    result = verify(chained)
    assert not result.ok and result.bad_id == 4 and "inserted" in result.problem


def test_row_appended_outside_stillroom_is_detected(chained: Path) -> None:
    last = read_row(chained, ROWS)
    forged = last | {"id": ROWS + 1, "uuid": "forged-end", "prev_hash": last["row_hash"]}
    forged["row_hash"] = row_hash(forged)
    insert_row(chained, forged)
    result = verify(chained)
    assert not result.ok and result.bad_id == ROWS + 1 and "outside Stillroom" in result.problem


def test_reordered_rows_are_detected(chained: Path) -> None:
    tamper(chained,
           "UPDATE generations SET id = -1 WHERE id = 2",
           "UPDATE generations SET id = 2 WHERE id = 3",
           "UPDATE generations SET id = 3 WHERE id = -1")
    result = verify(chained)
    assert not result.ok and result.bad_id == 2


def test_new_rows_after_tampering_still_chain_from_the_recorded_head(chained: Path) -> None:
    tamper(chained, f"DELETE FROM generations WHERE id = {ROWS}")
    ledger = Ledger.open(chained)
    new_id = ledger.append(record(99))
    assert new_id == ROWS + 1  # the removed id is not reused
    result = ledger.verify()
    ledger.close()
    assert not result.ok and result.bad_id == ROWS


def test_json_and_types_round_trip_to_the_same_hash(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.db")
    odd = record(1, params={"b": [1, 2.5, None], "a": "ü", "nested": {"z": True}}, ttft_ms=3, tokens_per_s=float("nan"),
                 seed=7.0, messages=[{"role": "user", "content": "héllo"}], logprobs_requested=True)
    rid = ledger.append(odd)
    assert ledger.verify().ok
    row = read_row(tmp_path / "ledger.db", rid)
    assert json.loads(row["params"])["a"] == "ü" and row["tokens_per_s"] is None and row["seed"] == 7
    ledger.close()


def test_concurrent_writers_on_two_connections_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    Ledger.open(path).close()
    errors: list[BaseException] = []

    def write(offset: int) -> None:
        ledger = Ledger.open(path)
        try:
            for i in range(100):
                ledger.append(record(offset + i))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            ledger.close()

    threads = [threading.Thread(target=write, args=(n * 1000,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    result = verify(path)
    assert result.ok and result.rows == 300


def test_rejects_unknown_fields_and_bad_status(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.db")
    with pytest.raises(ValueError, match="unknown generation fields"):
        ledger.append(record(1, colour="blue"))
    with pytest.raises(ValueError, match="status"):
        ledger.append(record(1, status="maybe"))
    with pytest.raises(ValueError, match="source"):
        ledger.append(record(1, source="elsewhere"))
    assert ledger.verify().rows == 0
    ledger.close()
