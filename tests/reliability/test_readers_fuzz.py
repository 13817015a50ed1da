"""Property-based tests of every import reader on malformed input (hypothesis, no model).

For each reader: at least 1,000 generated files that mix valid records, mutated records (fields
removed or replaced by values of any JSON type), truncated lines and garbage. The import either
finishes with every row accounted for, or raises its own ImportFileError having written nothing;
and the ledger's hash chain stays intact.

Faults injected and what was observed (each test runs 1,000 examples, derandomized under CI):
- OpenAI chat-messages, Batch API input, Batch API output and the input/output join, ShareGPT
  (JSONL and JSON), Alpaca (JSON and JSONL), prompt/response pairs (JSONL, CSV, TSV, named fields),
  simonw/llm logs.db (bytes that claim to be SQLite, missing tables and columns, values of any
  SQLite type; and llm 0.32+'s message store, written by llm's own LogStore, with cells set to any
  SQLite value or rows deleted), Stillroom's own JSONL and Markdown log exports (fields edited or
  removed, lines removed, repeated or replaced, files cut short): no exception other than
  ImportFileError; its message names the file; a refused import leaves the chain head and the row
  count unchanged; a finished import writes exactly the rows it reports and lists each malformed
  record with its position; after all examples the chain verifies and PRAGMA integrity_check is ok.
- The streaming JSON reader read in chunks of 1-40 bytes (cutting multi-byte characters), with one
  character of damage anywhere: records and issues only, never an exception; undamaged input comes
  back exactly.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from app.core.ingest import ImportFileError, run_import
from app.core.store import Ledger

# Hypothesis keeps caches in ./.hypothesis by default; a .hypothesis folder in the repository makes
# its pytest plugin warn during collection (an error here), so keep them in the temp folder.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "stillroom-hypothesis")

EXAMPLES = 1000
# derandomize: the same 1,000 inputs on every run, so the shares the tests assert cannot flake.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                database=None, derandomize=True)

scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2**62, max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
           | st.sampled_from(["\ud800", "user", "assistant", "gpt", "human", "", "/v1/chat/completions"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=5)

MESSAGES = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
                         {"role": "assistant", "content": "Hello."}], "temperature": 0.5}
BATCH_INPUT = {"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions",
               "body": {"model": "m", "messages": [{"role": "user", "content": "Hi?"}], "max_tokens": 5,
                        "logprobs": True, "seed": 3}}
BATCH_OUTPUT = {"id": "batch_req_1", "custom_id": "r1", "error": None, "response": {
    "status_code": 200, "request_id": "q1", "body": {
        "id": "c1", "object": "chat.completion", "created": 1738654821, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello."}, "logprobs": None,
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2}}}}
SHAREGPT = {"id": "c1", "system": "Be brief.", "conversations": [
    {"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello."},
    {"from": "human", "value": "And?"}, {"from": "gpt", "value": "Bye."}]}
ALPACA = {"instruction": "Say hi.", "input": "to Ann", "output": "Hi Ann.", "history": [["a", "b"]]}
PAIRS = {"prompt": "Hi?", "response": "Hello.", "model": "m", "system": "Be brief."}
LEDGER_ROW = {  # a line of Stillroom's own JSONL log export
    "id": 7, "uuid": "0b6c1c1e-3f5a-4d55-9a54-1f7f2d0a6a01", "started_at": "2026-01-02T03:04:05.678901+00:00",
    "finished_at": "2026-01-02T03:04:06.000000+00:00", "source": "chat", "workflow": "w", "conversation_id": "c",
    "model_name": "m", "mode": "chat", "system_prompt": "Be brief.", "prompt": "Hi?",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}],
    "params": {"temperature": 0.5}, "seed": 3, "logprobs_requested": 0, "response": "Hello.", "finish_reason": "stop",
    "logprobs": None, "prompt_tokens": 3, "completion_tokens": 2, "duration_ms": 12.5, "status": "ok", "error": None,
    "prev_hash": "0" * 64, "row_hash": "1" * 64}
MARKDOWN = (  # Stillroom's Markdown log export of two generations
    "# Stillroom ledger export\n\n## Generation 1\n\n- started: 2026-01-02T03:04:05.678901+00:00\n"
    '- model: "m" (sha256 abcdef012345)\n- mode: chat\n- source: chat, workflow: "w", status: ok\n'
    "- tokens: 3 in, 2 out\n\n### system\n\n```text\nBe brief.\n```\n\n### user\n\n````text\nHi ``` there\n````\n"
    "\n### assistant\n\n```text\nHello.\n```\n\n## Generation 2\n\n- started: 2026-01-02T03:04:09+00:00\n"
    "- model: null (sha256 )\n- mode: completion\n- source: cli, workflow: null, status: error\n\n### user\n\n"
    "```text\nOnce\n```\n\n### assistant\n\n```text\n\n```\n")


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and indexes) into a JSON template, the root included."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths_of(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths_of(item, (*prefix, index))
    return found


def apply_edit(value: Any, path: tuple[Any, ...], action: str, replacement: Any) -> Any:
    """A copy of `value` with the node at `path` removed or replaced (the root is replaced)."""
    if not path:
        return replacement
    copy = json.loads(json.dumps(value))
    node = copy
    for step in path[:-1]:
        if not _has(node, step):
            return copy  # an earlier edit removed or replaced the way there
        node = node[step]
    last = path[-1]
    if _has(node, last):
        if action == "remove":
            del node[last]
        else:
            node[last] = replacement
    return copy


def _has(node: Any, step: Any) -> bool:
    if isinstance(node, dict):
        return isinstance(step, str) and step in node
    return isinstance(node, list) and isinstance(step, int) and step < len(node)


def mutated(template: Any) -> st.SearchStrategy[Any]:
    """`template` after 1-3 edits: a field or item removed, or replaced by any JSON value."""
    edits = st.lists(st.tuples(st.sampled_from(paths_of(template)), st.sampled_from(["remove", "replace"]),
                               json_values), min_size=1, max_size=3)

    def edit(changes: list[tuple[tuple[Any, ...], str, Any]]) -> Any:
        value = template
        for path, action, replacement in changes:
            value = apply_edit(value, path, action, replacement)
        return value

    return edits.map(edit)


def record_lines(template: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """One line of a JSON Lines file: valid, mutated, truncated, random text or random bytes."""
    valid = json.dumps(template)
    edited = mutated(template).map(lambda v: json.dumps(v).encode())
    return st.one_of(
        st.just(valid.encode()), st.just(valid.encode()), edited, edited, edited,
        st.integers(1, len(valid) - 1).map(lambda n: valid[:n].encode()),
        st.text(max_size=30).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=30),
    )


def jsonl_files(template: dict[str, Any]) -> st.SearchStrategy[bytes]:
    lines = st.lists(record_lines(template), max_size=6).map(lambda ls: b"\n".join(ls))
    return st.one_of(lines, lines, lines, lines, lines, st.binary(max_size=200))


def json_array_files(template: dict[str, Any]) -> st.SearchStrategy[bytes]:
    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        records = draw(st.lists(st.one_of(st.just(template), st.just(template), mutated(template)), max_size=5))
        text = json.dumps(records, indent=draw(st.sampled_from([None, 1])))
        damage = draw(st.integers(0, 3))
        if damage == 1 and text:
            text = text[: draw(st.integers(0, len(text) - 1))]
        elif damage == 2 and text:
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.text(max_size=5)) + text[at:]
        return text.encode("utf-8", "surrogatepass")
    return st.one_of(build(), build(), build(), build(), st.binary(max_size=200))


def csv_files() -> st.SearchStrategy[bytes]:
    header = st.sampled_from(["prompt,response", "question,answer", "instruction,input,output", "a,b",
                              "prompt;response", "prompt\tresponse", ""])
    cell = st.one_of(st.text(max_size=15), st.sampled_from(['"', '""', '"a,b"', "\r", "\n", ",", "\t"]))
    rows = st.lists(st.lists(cell, max_size=4).map(lambda cells: ",".join(cells)), max_size=6)
    text = st.tuples(header, rows).map(lambda hr: "\n".join([hr[0], *hr[1]]).encode("utf-8", "surrogatepass"))
    return st.one_of(text, text, text, st.binary(max_size=200))


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A folder for the generated files and the ledger: in memory (/dev/shm) where there is one,
    since thousands of small files and commits are otherwise bound by the disk."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(prefix="stillroom-fuzz-", dir=shm) as folder:
        yield Path(folder)


class Harness:
    """One ledger for all examples of a test; checks the import's contract on each file."""

    def __init__(self, folder: Path) -> None:
        self.ledger = Ledger.open(folder / "ledger.db")
        self.outcomes = {"imported": 0, "refused": 0}

    def rows(self) -> int:
        return self.ledger.db.execute("SELECT count(*) FROM generations").fetchone()[0]

    def check(self, path: Path, fmt: str, **kwargs: Any) -> None:
        before, rows = self.ledger.head(), self.rows()
        try:
            summary = run_import(self.ledger, path, "fuzz", fmt, **kwargs)
        except ImportFileError as exc:
            named = {path.name, *(Path(str(v)).name for v in kwargs.values() if isinstance(v, Path))}
            assert any(name in str(exc) for name in named), f"the error does not name the file: {exc}"
            assert self.ledger.head() == before and self.rows() == rows, "a failed import wrote to the ledger"
            self.outcomes["refused"] += 1
            return
        self.outcomes["imported"] += 1
        assert self.ledger.head()[0] - before[0] == summary.rows_written
        assert summary.malformed >= len(summary.issues)
        assert summary.records >= summary.skipped
        for issue in summary.issues:
            assert issue.position >= 0 and issue.message

    def finish(self) -> None:
        assert self.ledger.verify().ok
        assert self.ledger.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        self.ledger.close()
        assert sum(self.outcomes.values()) >= EXAMPLES
        assert self.outcomes["imported"] >= EXAMPLES // 20, self.outcomes  # the import was reached


def fuzz_files(folder: Path, files: st.SearchStrategy[tuple[str, bytes]], formats: list[str],
               options: st.SearchStrategy[dict[str, str]] = st.just({})) -> None:
    """Import each generated (suffix, content) file with one of `formats` and check the contract."""
    harness = Harness(folder)

    @FUZZ
    @given(files, st.sampled_from(formats), options)
    def run(file: tuple[str, bytes], fmt: str, kwargs: dict[str, str]) -> None:
        path = folder / f"input{file[0]}"
        path.write_bytes(file[1])
        harness.check(path, fmt, **kwargs)

    run()
    harness.finish()


def as_file(suffix: str, files: st.SearchStrategy[bytes]) -> st.SearchStrategy[tuple[str, bytes]]:
    return files.map(lambda content: (suffix, content))


def test_fuzz_openai_messages(scratch: Path) -> None:
    fuzz_files(scratch, as_file(".jsonl", jsonl_files(MESSAGES)), ["auto", "openai-messages"])


def test_fuzz_openai_batch_input(scratch: Path) -> None:
    fuzz_files(scratch, as_file(".jsonl", jsonl_files(BATCH_INPUT)), ["auto", "openai-batch-input"])


def test_fuzz_openai_batch_output(scratch: Path) -> None:
    fuzz_files(scratch, as_file(".jsonl", jsonl_files(BATCH_OUTPUT)), ["auto", "openai-batch-output"])


def test_fuzz_openai_batch_join(scratch: Path) -> None:
    harness = Harness(scratch)
    inputs, outputs = scratch / "in.jsonl", scratch / "out.jsonl"

    valid = json.dumps(BATCH_INPUT).encode()
    requests = st.lists(st.one_of(st.just(valid), st.just(valid), record_lines(BATCH_INPUT)), min_size=1,
                        max_size=5).map(lambda lines: b"\n".join(lines))

    @FUZZ
    @given(requests, jsonl_files(BATCH_OUTPUT), st.booleans())
    def run(requests: bytes, results: bytes, reverse: bool) -> None:
        inputs.write_bytes(requests)
        outputs.write_bytes(results)
        harness.check(inputs if reverse else outputs, "auto", join=outputs if reverse else inputs)

    run()
    harness.finish()


def test_fuzz_sharegpt_jsonl_and_json(scratch: Path) -> None:
    files = st.one_of(as_file(".jsonl", jsonl_files(SHAREGPT)), as_file(".json", json_array_files(SHAREGPT)))
    fuzz_files(scratch, files, ["auto", "sharegpt"])


def test_fuzz_alpaca_json_and_jsonl(scratch: Path) -> None:
    files = st.one_of(as_file(".json", json_array_files(ALPACA)), as_file(".jsonl", jsonl_files(ALPACA)))
    fuzz_files(scratch, files, ["auto", "alpaca"])


def test_fuzz_pairs_jsonl_and_csv(scratch: Path) -> None:
    files = st.one_of(as_file(".jsonl", jsonl_files(PAIRS)), as_file(".jsonl", jsonl_files({"q": "Hi?", "a": "Yo."})),
                      as_file(".csv", csv_files()), as_file(".tsv", csv_files()))
    named = st.sampled_from([{}, {}, {"prompt_field": "q", "response_field": "a"}, {"prompt_field": "prompt"}])
    fuzz_files(scratch, files, ["auto", "pairs"], named)


# -- llm's logs.db ---------------------------------------------------------------------------------

LLM_COLUMNS = ["id", "model", "prompt", "system", "prompt_json", "options_json", "response", "response_json",
               "conversation_id", "duration_ms", "datetime_utc", "input_tokens", "output_tokens", "resolved_model"]
sql_values = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(),
                       st.text(max_size=20), st.binary(max_size=8),
                       json_values.map(lambda v: json.dumps(v)),
                       st.sampled_from(['{"messages": [{"role": "user", "content": "Hi"}]}', '{"temperature": 1}',
                                        '{"finish_reason": "stop"}', "2025-03-24T07:26:53+00:00", "not json {"]))


LLM_ROW = {
    "id": "01jq8v3k2m4n5p6q7r8s9t0v1x", "model": "gpt-4o-mini", "prompt": "Hi?", "system": "Be brief.",
    "prompt_json": json.dumps({"messages": [{"role": "user", "content": "Hi?"}]}),
    "options_json": json.dumps({"temperature": 0.2, "seed": 3}), "response": "Hello.",
    "response_json": json.dumps({"finish_reason": "stop"}), "conversation_id": "c1", "duration_ms": 120,
    "datetime_utc": "2025-03-24T07:26:53.589793+00:00", "input_tokens": 3, "output_tokens": 2,
    "resolved_model": "gpt-4o-mini-2024-07-18",
}
llm_rows = st.lists(st.tuples(st.sampled_from(LLM_COLUMNS), sql_values), max_size=3).map(
    lambda edits: {**LLM_ROW, **dict(edits)})


@st.composite
def llm_databases(draw: st.DrawFn) -> tuple[str, Any]:
    """Bytes that claim to be SQLite, a database without `responses`, or a `responses` table with
    some of llm's columns and rows whose values are edited to any SQLite type."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return "bytes", b"SQLite format 3\x00" + draw(st.binary(max_size=300))
    dropped = draw(st.sets(st.sampled_from(LLM_COLUMNS), max_size=2)) if draw(st.booleans()) else set()
    columns = [c for c in LLM_COLUMNS if c not in dropped]
    rows = draw(st.lists(llm_rows, max_size=4))
    table = "responses" if kind > 1 else "other"
    return "db", (table, columns, rows, draw(st.booleans()))


def write_llm_db(path: Path, spec: tuple[str, Any]) -> None:
    """Write the generated database (built in memory, then serialized) or bytes to `path`."""
    kind, data = spec
    if kind == "bytes":
        path.write_bytes(data)
        return
    table, columns, rows, conversations = data
    conn = sqlite3.connect(":memory:")
    if conversations:
        conn.execute("CREATE TABLE conversations (id TEXT PRIMARY KEY, name TEXT, model TEXT)")
        conn.execute("INSERT INTO conversations VALUES ('c1', 'A chat', 'm')")
    conn.execute(f"CREATE TABLE {table} ({', '.join(columns) or 'x'})")
    if columns:
        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                         [[row[c] for c in columns] for row in rows])
    conn.commit()
    path.write_bytes(conn.serialize())
    conn.close()


def test_fuzz_llm_logs(scratch: Path) -> None:
    harness = Harness(scratch)
    path = scratch / "logs.db"

    @FUZZ
    @given(llm_databases(), st.sampled_from(["auto", "llm-logs"]))
    def run(spec: tuple[str, Any], fmt: str) -> None:
        write_llm_db(path, spec)
        harness.check(path, fmt)

    run()
    harness.finish()


TURN_TABLES = ("turns", "messages", "parts", "threads", "fragments", "part_fragments")


def llm_store_template(folder: Path) -> bytes:
    """A logs.db of llm 0.32 on, written by llm's own LogStore: two turns of one thread (the
    second continuing the first) whose text partly lives in a fragment."""
    import sqlite_utils
    from llm.logs import LogStore
    from llm.parts import Message, TextPart

    path = folder / "template.db"
    store = LogStore(sqlite_utils.Database(path))
    thread = store.ensure_thread("t", name="A chat")
    chain = [Message("system", [TextPart("Be brief.")]), Message("user", [TextPart("A shared text. Hi?")])]
    for number, answer in enumerate(["Hello.", "Bye."]):
        parent = store.ensure_chain(chain, fragments=["A shared text."])
        tip = store.ensure_chain([Message("assistant", [TextPart(answer)])], parent=parent)
        store.db["turns"].insert({"id": f"turn-{number}", "thread_id": thread, "parent_message_hash": parent,
                                  "tip_message_hash": tip, "model": "m", "options_json": '{"seed": 3}',
                                  "duration_ms": 5, "datetime_utc": "2026-01-02T03:04:05+00:00"})
        chain += [Message("assistant", [TextPart(answer)]), Message("user", [TextPart("And?")])]
    store.db.conn.close()
    return path.read_bytes()


def test_fuzz_llm_turns(scratch: Path) -> None:
    """The message store with cells of its tables set to any SQLite value, or rows deleted."""
    harness = Harness(scratch)
    template = llm_store_template(scratch)
    path = scratch / "logs.db"
    edits = st.lists(st.tuples(st.sampled_from(TURN_TABLES), st.integers(0, 12), st.integers(0, 8),
                               st.one_of(sql_values, st.just("<delete>"))), min_size=1, max_size=4)

    @FUZZ
    @given(edits, st.sampled_from(["auto", "llm-logs"]))
    def run(changes: list[tuple[str, int, int, Any]], fmt: str) -> None:
        conn = sqlite3.connect(":memory:")
        conn.deserialize(template)
        conn.execute("PRAGMA foreign_keys = OFF")
        for table, row, column, value in changes:
            columns = [info[1] for info in conn.execute(f"PRAGMA table_info({table})")]
            rowids = [r for (r,) in conn.execute(f"SELECT rowid FROM {table} ORDER BY rowid")]
            if not rowids:
                continue
            target = rowids[row % len(rowids)]
            if value == "<delete>":
                conn.execute(f"DELETE FROM {table} WHERE rowid = ?", [target])
            else:
                try:
                    conn.execute(f'UPDATE {table} SET "{columns[column % len(columns)]}" = ? WHERE rowid = ?',
                                 [value, target])
                except sqlite3.IntegrityError:
                    pass  # a unique index refused the value; the store stays as it was
        conn.commit()
        path.write_bytes(conn.serialize())
        conn.close()
        harness.check(path, fmt)

    run()
    harness.finish()


def test_fuzz_stillroom_log_export(scratch: Path) -> None:
    fuzz_files(scratch, as_file(".jsonl", jsonl_files(LEDGER_ROW)), ["auto", "stillroom-log"])


@st.composite
def markdown_files(draw: st.DrawFn) -> bytes:
    """The Markdown export with lines removed, repeated or replaced, text inserted, or cut short."""
    lines = MARKDOWN.split("\n")
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["remove", "repeat", "replace", "insert"]))
        noise = draw(st.one_of(st.text(max_size=20), st.sampled_from(
            ["## Generation 3", "### assistant", "```text", "````", "- model: {", "- started: yesterday",
             "- mode: poem", "- source: x, status: maybe", "\r", "\ud800"])))
        if action == "remove":
            del lines[at]
        elif action == "repeat":
            lines.insert(at, lines[at])
        elif action == "replace":
            lines[at] = noise
        else:
            lines.insert(at, noise)
    text = "\n".join(lines)
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode("utf-8", "surrogatepass")


def test_fuzz_stillroom_markdown_export(scratch: Path) -> None:
    files = st.one_of(markdown_files(), markdown_files(), markdown_files(), st.binary(max_size=100).map(
        lambda junk: b"# Stillroom ledger export\n" + junk))
    fuzz_files(scratch, as_file(".md", files), ["auto", "stillroom-markdown"])


def test_every_reader_is_fuzzed() -> None:
    from app.core.ingest import FORMATS

    fuzzed = {"openai-messages", "openai-batch-input", "openai-batch-output", "sharegpt", "alpaca", "pairs",
              "llm-logs", "stillroom-log", "stillroom-markdown"}
    assert fuzzed == set(FORMATS)


# -- the streaming JSON reader at every chunk boundary ---------------------------------------------


def test_fuzz_json_stream_at_any_chunk_size(scratch: Path) -> None:
    """Read in chunks of 1-40 bytes, a valid array or object stream gives back exactly its records;
    a damaged one gives records and issues, never an exception."""
    from app.core.ingest import containers

    path = scratch / "stream.json"
    unicode = {"prompt": "ünïcødé ✓ 漢字 🧪", "response": "é" * 7}
    records = st.lists(st.one_of(st.just(ALPACA), st.just(unicode), mutated(SHAREGPT), mutated(PAIRS)), max_size=5)

    @FUZZ
    @given(records, st.booleans(), st.integers(1, 40), st.sampled_from([None, 0, 2]),
           st.one_of(st.none(), st.tuples(st.integers(0, 10_000), st.text(max_size=3))))
    def run(values: list[Any], array: bool, chunk: int, indent: int | None,
            damage: tuple[int, str] | None) -> None:
        def dump(value: Any) -> str:  # raw UTF-8 where it can be, to cut multi-byte characters
            text = json.dumps(value, indent=indent, ensure_ascii=False)
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                text = json.dumps(value, indent=indent)
            return text

        text = dump(values) if array else "\n".join(dump(v) for v in values)
        if damage is not None:
            at = damage[0] % (len(text) + 1)
            text = text[:at] + damage[1] + text[at + 1:]
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        saved = containers.CHUNK_BYTES
        containers.CHUNK_BYTES = chunk
        try:
            items = list(containers.JsonSource(path, array=array))
        finally:
            containers.CHUNK_BYTES = saved
        assert all(isinstance(i, (containers.RawRecord, containers.Issue)) for i in items)
        if damage is None:  # compared as JSON text: a NaN the mutations put in is not equal to itself
            read = [i.value for i in items if isinstance(i, containers.RawRecord)]
            assert json.dumps(read, sort_keys=True) == json.dumps(values, sort_keys=True)
            assert not [i for i in items if isinstance(i, containers.Issue)]

    run()
