"""Resource exhaustion by small hostile files (no model).

Faults injected and what was observed before the bounds:
- A 1.5 KB Parquet file whose one row holds a list of 2,000,000 run-length-encoded strings: reading
  it (shape detection, then the Croissant sample's whole row group) took hundreds of MB per million
  entries and crashed at 10 million. Now: DatasetError naming the row group and column, nothing decoded.
- JSON Lines with a row nested 5,000 levels deep: provenance matched, then crashed with a
  RecursionError traceback while writing Croissant. Now: that line is a row problem naming it, and
  the statement is written.
- A 4 KB logs.db whose `responses` is a view over a recursive query that never ends: `import` hung
  in count(*) with no way to cancel. Now: the SQLite progress handler stops it within the time
  budget (and at once on cancel) with an issue saying why; a view that ends but yields a huge
  number of rows is read at most MAX_VIEW_ROWS rows.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.core.cancel import CancelToken
from app.core.ingest import run_import
from app.core.ingest.containers import MAX_DEPTH
from app.core.ingest.readers import sqlite_input
from app.core.ingest.readers.llm_logs import LlmLogsSource
from app.core.provenance import DatasetError, RowProblem, detect_shape, iter_rows
from app.core.provenance.croissant import nested_keys
from app.core.store import Ledger

LLM_COLUMNS = "id TEXT, model TEXT, prompt TEXT, response TEXT"


def list_bomb(path: Path, entries: int) -> Path:
    """One row whose `messages` column is a list of `entries` copies of one 100-character string."""
    strings = pa.DictionaryArray.from_arrays(pa.array(np.zeros(entries, dtype=np.int32)), pa.array(["x" * 100]))
    messages = pa.ListArray.from_arrays(pa.array([0, entries], pa.int32()), strings.cast(pa.string()))
    table = pa.table({"prompt": ["hi"], "response": ["hello"], "messages": messages})
    pq.write_table(table, path, compression="zstd")
    return path


def test_a_tiny_parquet_file_declaring_millions_of_values_is_refused_before_decoding(tmp_path: Path) -> None:
    path = list_bomb(tmp_path / "bomb.parquet", 2_000_000)
    assert path.stat().st_size < 4096
    with pytest.raises(DatasetError, match=r"row group 1, column 'messages.*2,000,000 values for 1 rows"):
        detect_shape(path)
    # the Croissant sample (which used to read the whole first row group) reads nothing from it
    assert nested_keys(path, "parquet", ["messages"]) == {}


def test_an_honest_parquet_file_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "ok.parquet"
    pq.write_table(pa.table({"prompt": [f"p{i}" for i in range(5000)], "response": ["r"] * 5000,
                             "messages": [[{"role": "user", "content": "hi"}]] * 5000}), path)
    shape = detect_shape(path, {"prompt": "prompt", "response": "response"})
    assert sum(1 for _ in iter_rows(path, shape)) == 5000
    assert nested_keys(path, "parquet", ["messages"]) == {"messages": (True, ["role", "content"])}


def test_deeply_nested_json_line_is_a_row_problem_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    deep = "[" * 5000 + "]" * 5000
    just_over = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    path.write_text(json.dumps({"prompt": "a", "response": "b"}) + "\n"
                    + f'{{"prompt": "c", "response": "d", "x": {deep}}}\n'
                    + f'{{"prompt": "e", "response": "f", "x": {just_over}}}\n', encoding="utf-8")
    shape = detect_shape(path)
    rows = list(iter_rows(path, shape))
    problems = [row for row in rows if isinstance(row, RowProblem)]
    assert [p.reason for p in problems] == [f"line {n}: nested deeper than {MAX_DEPTH} levels of arrays and objects"
                                            for n in (2, 3)]
    assert nested_keys(path, "jsonl", ["x"]) == {}  # the Croissant sample no longer raises RecursionError


def test_deep_json_array_record_costs_only_itself(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    deep = "[" * 100 + "]" * 100  # parsed, then refused; deeper than the parser goes ends the file
    path.write_text(f'[{{"prompt": "a", "response": "b", "x": {deep}}}, {{"prompt": "c", "response": "d"}}]',
                    encoding="utf-8")
    rows = list(iter_rows(path, detect_shape(path, {"prompt": "prompt", "response": "response"})))
    assert isinstance(rows[0], RowProblem) and "nested deeper" in rows[0].reason
    assert rows[1].prompt == "c"


def endless_view_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(f"""
        CREATE TABLE real_responses ({LLM_COLUMNS});
        CREATE VIEW responses AS
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n)
          SELECT 'r' || i AS id, 'm' AS model, printf('%.1000c', 'p') AS prompt, 'x' AS response
          FROM n WHERE i > 0 AND i < 0 OR i = -1 OR i > 1e15;
    """)
    conn.close()
    return path


def many_rows_view_db(path: Path, rows: int) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(f"""
        CREATE TABLE real_responses ({LLM_COLUMNS});
        CREATE VIEW responses AS
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT {rows})
          SELECT 'r' || i AS id, 'm' AS model, 'prompt ' || i AS prompt, printf('%.20000c', 'x') AS response FROM n;
    """)
    conn.close()
    return path


def test_an_endless_view_is_stopped_by_the_time_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = endless_view_db(tmp_path / "logs.db")
    assert path.stat().st_size <= 8192
    monkeypatch.setattr(sqlite_input, "STEP_BUDGET_S", 1.0)
    started = time.monotonic()
    items = list(LlmLogsSource(path))
    assert time.monotonic() - started < 30
    assert len(items) == 1 and "without giving the next row" in items[0].message


def test_an_endless_view_import_can_be_cancelled(tmp_path: Path) -> None:
    path = endless_view_db(tmp_path / "logs.db")
    source = LlmLogsSource(path)
    source.cancel = CancelToken()
    threading.Timer(0.5, source.cancel.cancel).start()
    started = time.monotonic()
    items = list(source)
    assert time.monotonic() - started < 5  # well within the 10 s budget: the cancel stopped it
    assert items[0].message == "cancelled"


def test_rows_from_a_view_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = many_rows_view_db(tmp_path / "logs.db", 50_000)  # 1 GB of responses from a few KB
    assert path.stat().st_size <= 8192
    monkeypatch.setattr("app.core.ingest.readers.llm_logs.MAX_VIEW_ROWS", 300)
    ledger = Ledger.open(tmp_path / "ledger.db")
    try:
        summary = run_import(ledger, path, "views")
        assert summary.rows_written == 300
        assert any("is a view" in str(issue) for issue in summary.issues)
        assert ledger.verify().ok
    finally:
        ledger.close()


def test_the_logs_db_is_opened_read_only(tmp_path: Path) -> None:
    path = many_rows_view_db(tmp_path / "logs.db", 3)
    before = path.read_bytes()
    conn = sqlite_input.connect_guarded(path)
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("CREATE TABLE planted (x)")
    conn.close()
    assert path.read_bytes() == before
