"""Property-based tests of the provenance dataset reader (app/core/provenance/dataset.py) and of
matching a malformed dataset against a ledger (hypothesis, no model).

Faults injected and what was observed (1,000 examples each, derandomized under CI):
- JSON Lines, JSON arrays, CSV/TSV and Parquet files built from prompt/response, Alpaca, ShareGPT
  and OpenAI-messages records with fields removed or replaced by values of any JSON type, lines
  truncated, bytes of garbage, damaged or truncated Parquet, fields named by hand that may not
  exist: detect_shape either gives a shape or raises DatasetError naming the file; iter_rows only
  yields DatasetRow / RowProblem (each problem with its position and a reason), never raises.
- The same files matched against a small real ledger (run_match): a report whose counts add up to
  the rows read, or DatasetError; the ledger is never written (chain head and row count unchanged,
  the chain verifies, PRAGMA integrity_check ok).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given
from hypothesis import strategies as st

from app.core.provenance import DatasetError, DatasetRow, RowProblem, detect_shape, iter_rows, run_match
from app.core.provenance.match import TRACED_EXACT, TRACED_NEAR, UNTRACED
from app.core.store import Ledger
from tests.core.records import record
from tests.reliability import test_readers_fuzz as inputs

EXAMPLES = inputs.EXAMPLES
FUZZ = inputs.FUZZ
scratch = inputs.scratch  # the in-memory scratch folder fixture

PAIRS = {"prompt": "Prompt number 1: tell me about item 1", "response": "Response number 1 about item 1."}
ALPACA = {"instruction": "Say hi.", "input": "to Ann", "output": "Hi Ann."}
SHAREGPT = {"conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello."}]}
MESSAGES = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
                         {"role": "assistant", "content": "Hello."}]}
TEMPLATES = [PAIRS, ALPACA, SHAREGPT, MESSAGES]


@st.composite
def parquet_files(draw: st.DrawFn) -> bytes:
    """A Parquet file of mutated records (columns of any type pyarrow can infer), or a damaged one."""
    template = draw(st.sampled_from(TEMPLATES))
    records = draw(st.lists(st.one_of(st.just(template), inputs.mutated(template)), min_size=1, max_size=4))
    rows = [r if isinstance(r, dict) else {"value": r} for r in records]
    try:
        table = pa.Table.from_pylist(rows)
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        data = buffer.getvalue()
    except (pa.ArrowException, ValueError, TypeError, OverflowError):
        data = b"PAR1" + json.dumps(rows, default=str).encode() + b"PAR1"
    damage = draw(st.integers(0, 3))
    if damage == 1:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == 2:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at + 1:]
    return data


def dataset_files() -> st.SearchStrategy[tuple[str, bytes]]:
    jsonl = st.sampled_from(TEMPLATES).flatmap(inputs.jsonl_files)
    arrays = st.sampled_from(TEMPLATES).flatmap(inputs.json_array_files)
    return st.one_of(inputs.as_file(".jsonl", jsonl), inputs.as_file(".jsonl", jsonl),
                     inputs.as_file(".json", arrays), inputs.as_file(".csv", inputs.csv_files()),
                     inputs.as_file(".tsv", inputs.csv_files()), inputs.as_file(".parquet", parquet_files()),
                     inputs.as_file(".txt", st.binary(max_size=100)))


hand_fields = st.one_of(st.none(), st.none(), st.none(), st.fixed_dictionaries(
    {"prompt": st.sampled_from(["prompt", "instruction", "q", "nope"]),
     "response": st.sampled_from(["response", "output", "a", ""])}),
    st.fixed_dictionaries({"messages": st.sampled_from(["messages", "conversations", "x"])}))


def test_fuzz_provenance_dataset_reader(scratch: Path) -> None:
    outcomes = {"read": 0, "refused": 0}

    @FUZZ
    @given(dataset_files(), hand_fields)
    def run(file: tuple[str, bytes], fields: dict[str, str] | None) -> None:
        path = scratch / f"dataset{file[0]}"
        path.write_bytes(file[1])
        try:
            shape = detect_shape(path, fields)
        except DatasetError as exc:
            assert path.name in str(exc) or fields, f"the error does not name the file: {exc}"
            outcomes["refused"] += 1
            return
        outcomes["read"] += 1
        for item in iter_rows(path, shape):
            assert isinstance(item, (DatasetRow, RowProblem))
            if isinstance(item, RowProblem):
                assert item.index >= 0 and item.reason
            else:
                assert isinstance(item.prompt, str) and isinstance(item.response, str)

    run()
    assert sum(outcomes.values()) >= EXAMPLES and outcomes["read"] >= EXAMPLES // 10, outcomes


def test_fuzz_provenance_match_never_writes_the_ledger(scratch: Path) -> None:
    ledger_file = scratch / "ledger.db"
    ledger = Ledger.open(ledger_file)
    ledger.append_many([record(i) for i in range(1, 6)])
    before = ledger.head()
    outcomes = {"matched": 0, "refused": 0}

    @FUZZ
    @given(dataset_files())
    def run(file: tuple[str, bytes]) -> None:
        path = scratch / f"dataset{file[0]}"
        path.write_bytes(file[1])
        try:
            report = run_match(path, ledger_file)
        except DatasetError as exc:
            assert path.name in str(exc), f"the error does not name the file: {exc}"
            outcomes["refused"] += 1
        else:
            outcomes["matched"] += 1
            assert sum(report.counts[k] for k in (TRACED_EXACT, TRACED_NEAR, UNTRACED)) == report.rows
        assert ledger.head() == before

    run()
    assert ledger.verify().ok and ledger.head() == before
    assert ledger.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert ledger.db.execute("SELECT count(*) FROM generations").fetchone()[0] == 5
    ledger.close()
    assert sum(outcomes.values()) >= EXAMPLES and outcomes["matched"] >= EXAMPLES // 10, outcomes
