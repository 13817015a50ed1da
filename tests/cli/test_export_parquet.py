"""`stillroom log export --format parquet`, read back by DuckDB: the same rows, hashes, leaves and
aggregates as the ledger's SQLite, the filters, an owner-only file, no salts, and an error for an
export of nothing."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from app.core.store import Ledger
from app.core.store import export_parquet as parquet_export
from app.core.store.chain import row_hash
from app.core.store.merkle import stored_hash_index
from app.core.store.queries import LogFilter
from app.core.store.schema import CHAIN_COLUMNS
from app.core.store.tree import root, tree_size
from tests.core.records import record

REPO = Path(__file__).resolve().parents[2]
MODELS = (("a" * 64, "Model A"), ("b" * 64, "Model B"), ("c" * 64, "Model C"))


def seed(ledger: Ledger, count: int = 300) -> None:
    rows = []
    for i in range(1, count + 1):
        sha, name = MODELS[i % 3]
        rows.append(record(i, model_sha256=sha, model_name=name, workflow=f"wf-{i % 4}",
                           completion_tokens=i % 50, prompt_tokens=10 + i % 7,
                           status="error" if i % 29 == 0 else "ok",
                           messages=[{"role": "user", "content": f"Prompt number {i} ünïcode"}],
                           meta={"batch": i // 100, "nested": {"k": [1, 2.5, None]}}))
    ledger.append_many(rows)


def stillroom(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "STILLROOM_HOME": str(home)}, timeout=180)
    if check and done.returncode != 0:
        raise AssertionError(f"stillroom {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done


def test_duckdb_reads_the_same_rows_hashes_leaves_and_aggregates(home: Path, ledger: Ledger, tmp_path: Path) -> None:
    seed(ledger)
    out = tmp_path / "ledger.parquet"
    done = stillroom(home, "log", "export", "--format", "parquet", "--out", str(out))
    assert "wrote 300 record(s)" in done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    sqlite = ledger.db.conn
    duck = duckdb.connect()
    source = f"read_parquet('{out}')"
    assert duck.execute(f"SELECT count(*) FROM {source}").fetchone()[0] == 300
    assert duck.execute(f"SELECT id, prev_hash, row_hash FROM {source} ORDER BY id").fetchall() == \
        sqlite.execute("SELECT id, prev_hash, row_hash FROM generations ORDER BY id").fetchall()
    leaves = dict(sqlite.execute("SELECT idx, hash FROM merkle_hashes").fetchall())
    assert duck.execute(f"SELECT id, leaf_index, leaf_hash FROM {source} ORDER BY id").fetchall() == [
        (i, i - 1, leaves[stored_hash_index(0, i - 1)].hex()) for i in range(1, 301)]
    per_model = ("SELECT model_name, count(*), sum(completion_tokens), sum(prompt_tokens) FROM {} "
                 "GROUP BY model_name ORDER BY model_name")
    assert duck.execute(per_model.format(source)).fetchall() == \
        sqlite.execute(per_model.format("generations")).fetchall()
    assert duck.execute(f"SELECT status, count(*) FROM {source} GROUP BY status ORDER BY status").fetchall() == \
        [("error", 10), ("ok", 290)]
    # the JSON columns are the stored text, so DuckDB's JSON functions read them ...
    assert duck.execute(f"SELECT meta->>'$.nested.k[1]' FROM {source} WHERE id = 7").fetchone()[0] == "2.5"
    columns = [row[0] for row in duck.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    assert "leaf_hash" in columns and not [name for name in columns if "salt" in name]
    # ... and every row's hash can be recomputed from the file alone
    table = pq.read_table(out).to_pylist()
    assert all(row_hash({name: row[name] for name in CHAIN_COLUMNS}) == row["row_hash"] for row in table)
    metadata = json.loads(pq.read_schema(out).metadata[b"stillroom"])
    assert metadata["tree_size"] == tree_size(sqlite) == 300
    assert metadata["tree_root"] == root(sqlite, 300).hex()


def test_filters_and_export_of_nothing(home: Path, ledger: Ledger, tmp_path: Path) -> None:
    seed(ledger, 40)
    out = tmp_path / "wf1.parquet"
    stillroom(home, "log", "export", "--format", "parquet", "--workflow", "wf-1", "--status", "ok", "--out", str(out))
    expected = ledger.db.execute("SELECT id FROM generations WHERE workflow = 'wf-1' AND status = 'ok' "
                                 "ORDER BY id").fetchall()
    assert duckdb.connect().execute(f"SELECT id FROM read_parquet('{out}') ORDER BY id").fetchall() == expected
    nothing = tmp_path / "none.parquet"
    failed = stillroom(home, "log", "export", "--format", "parquet", "--workflow", "absent", "--out", str(nothing),
                       check=False)
    assert failed.returncode == 1 and "nothing exported" in failed.stderr and not nothing.exists()
    assert "Traceback" not in failed.stderr


def test_rows_stream_in_row_groups(ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large export is written a row group at a time; each group holds at most ROW_GROUP_ROWS rows."""
    seed(ledger, 250)
    monkeypatch.setattr(parquet_export, "ROW_GROUP_ROWS", 60)
    monkeypatch.setattr(parquet_export, "READ_CHUNK", 25)
    out = tmp_path / "groups.parquet"
    assert parquet_export.export_parquet(ledger.db, LogFilter(), out) == 250
    meta = pq.ParquetFile(out).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [60, 60, 60, 60, 10]
    assert not list(tmp_path.glob(".groups.parquet.*"))  # the temporary file was renamed, none left over
