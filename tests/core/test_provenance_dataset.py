"""Reading datasets for provenance: every format and shape, fields named by hand, malformed rows,
and files that cannot be read at all (empty, not UTF-8, not JSON, unknown shape)."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.core.ingest.readers.datasets import read_alpaca
from app.core.ingest.records import ReadOptions
from app.core.provenance import DatasetError, DatasetRow, RowProblem, detect_shape, file_sha256, iter_rows
from app.core.provenance.dataset import RowReader, preview

PAIRS = [
    {"prompt": "Name a prime number.", "response": "Seven is a prime number."},
    {"prompt": "What colour is the sky?", "response": "On a clear day the sky is blue."},
    {"prompt": "Say hello in French.", "response": "Bonjour !"},
]
ALPACA = [
    {"instruction": "Translate to German.", "input": "Good morning", "output": "Guten Morgen"},
    {"instruction": "Give a synonym for happy.", "input": "", "output": "Joyful."},
]
SHAREGPT = [
    {"conversations": [{"from": "system", "value": "Be brief."},
                       {"from": "human", "value": "Hi there"}, {"from": "gpt", "value": "Hello!"},
                       {"from": "human", "value": "What is 2+2?"}, {"from": "gpt", "value": "Four."}]},
    {"conversations": [{"from": "human", "value": "Capital of Peru?"}, {"from": "gpt", "value": "Lima."}]},
]
MESSAGES = [
    {"messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Largest planet?"},
                  {"role": "assistant", "content": "Jupiter."}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "Smallest planet?"}]},
                  {"role": "assistant", "content": "Mercury."}]},
]


def write_jsonl(path: Path, records: list[Any], extra_lines: tuple[str, ...] = ()) -> Path:
    lines = [json.dumps(r) for r in records] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_csv(path: Path, records: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return path


def write_parquet(path: Path, records: list[dict[str, Any]]) -> Path:
    pq.write_table(pa.Table.from_pylist(records), path, row_group_size=2)
    return path


def rows_of(path: Path, **kw: Any) -> list[DatasetRow | RowProblem]:
    return list(iter_rows(path, detect_shape(path, **kw)))


def texts(items: list[DatasetRow | RowProblem]) -> list[tuple[int, str, str]]:
    return [(r.index, r.prompt, r.response) for r in items if isinstance(r, DatasetRow)]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet"])
def test_prompt_response_in_every_format(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"data.{fmt}"
    if fmt == "jsonl":
        write_jsonl(path, PAIRS)
    elif fmt == "json":
        path.write_text(json.dumps(PAIRS, indent=2), encoding="utf-8")
    elif fmt == "csv":
        write_csv(path, PAIRS)
    else:
        write_parquet(path, PAIRS)
    shape = detect_shape(path)
    assert shape.file_format == fmt
    assert shape.kind == "prompt_response"
    assert shape.fields == {"prompt": "prompt", "response": "response"}
    assert shape.columns == ("prompt", "response")
    assert shape.column_types == {"prompt": "text", "response": "text"}
    assert texts(list(iter_rows(path, shape))) == [(i, p["prompt"], p["response"]) for i, p in enumerate(PAIRS)]


@pytest.mark.parametrize(("prompt", "response"), [
    ("instruction", "output"), ("question", "answer"), ("input", "output"), ("text", "completion"),
    ("prompt", "completion"), ("Question", "Answer"),
])
def test_synonyms_of_prompt_and_response(tmp_path: Path, prompt: str, response: str) -> None:
    path = write_jsonl(tmp_path / "syn.jsonl", [{prompt: "Why?", response: "Because.", "id": 3}])
    shape = detect_shape(path)
    expected_kind = "alpaca" if prompt == "instruction" else "prompt_response"
    assert (shape.kind, shape.fields["prompt"], shape.fields["response"]) == (expected_kind, prompt, response)
    assert shape.column_types["id"] == "integer"
    assert texts(list(iter_rows(path, shape))) == [(0, "Why?", "Because.")]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet"])
def test_alpaca_prompt_is_built_like_the_import(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"alpaca.{fmt}"
    if fmt == "jsonl":
        write_jsonl(path, ALPACA)
    elif fmt == "json":
        path.write_text(json.dumps(ALPACA), encoding="utf-8")
    else:
        write_parquet(path, ALPACA)
    shape = detect_shape(path)
    assert shape.kind == "alpaca"
    assert shape.fields == {"prompt": "instruction", "response": "output", "input": "input"}
    rows = texts(list(iter_rows(path, shape)))
    assert rows == [(0, "Translate to German.\n\nGood morning", "Guten Morgen"), (1, "Give a synonym for happy.", "Joyful.")]
    imported = [read_alpaca(record, ReadOptions())[0] for record in ALPACA]
    assert [(r.prompt, r.response) for r in imported] == [(p, r) for _, p, r in rows]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet"])
def test_sharegpt_row_is_its_last_exchange(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"share.{fmt}"
    if fmt == "jsonl":
        write_jsonl(path, SHAREGPT)
    elif fmt == "json":
        path.write_text(json.dumps(SHAREGPT), encoding="utf-8")
    else:
        write_parquet(path, SHAREGPT)
    shape = detect_shape(path)
    assert shape.kind == "sharegpt"
    assert shape.column_types["conversations"] == "json"
    assert texts(list(iter_rows(path, shape))) == [(0, "What is 2+2?", "Four."), (1, "Capital of Peru?", "Lima.")]


def test_openai_messages_jsonl_and_csv_cells(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "chat.jsonl", MESSAGES)
    shape = detect_shape(path)
    assert shape.kind == "openai_messages"
    assert texts(list(iter_rows(path, shape))) == [(0, "Largest planet?", "Jupiter."), (1, "Smallest planet?", "Mercury.")]
    cells = write_csv(tmp_path / "chat.csv", [{"messages": json.dumps(m["messages"])} for m in MESSAGES])
    assert texts(rows_of(cells)) == [(0, "Largest planet?", "Jupiter."), (1, "Smallest planet?", "Mercury.")]


def test_fields_named_by_hand_override_detection(tmp_path: Path) -> None:
    records = [{"prompt": "ignored", "response": "ignored", "q": "Real question", "a": "Real answer"}]
    path = write_jsonl(tmp_path / "custom.jsonl", records)
    assert detect_shape(path).fields == {"prompt": "prompt", "response": "response"}
    shape = detect_shape(path, {"prompt": "q", "response": "A"})  # case-insensitive names
    assert (shape.kind, shape.fields) == ("custom", {"prompt": "q", "response": "a"})
    assert texts(list(iter_rows(path, shape))) == [(0, "Real question", "Real answer")]
    convo = write_jsonl(tmp_path / "dialog.jsonl", [{"dialog": SHAREGPT[1]["conversations"]}])
    assert texts(rows_of(convo, fields={"conversations": "dialog"})) == [(0, "Capital of Peru?", "Lima.")]
    with pytest.raises(DatasetError, match='no field "answer".*the file has: prompt, response, q, a'):
        detect_shape(path, {"prompt": "q", "response": "answer"})
    with pytest.raises(DatasetError, match="name both the prompt and the response"):
        detect_shape(path, {"prompt": "q"})
    with pytest.raises(DatasetError, match="unknown field role"):
        detect_shape(path, {"reply": "a"})


def test_malformed_rows_are_reported_with_position_and_counted(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mixed.jsonl", PAIRS[:1], extra_lines=(
        "{not json", json.dumps({"prompt": "only a prompt"}), json.dumps({"prompt": "p", "response": 7}),
        json.dumps(["a", "list"]), "", json.dumps(PAIRS[1])))
    items = rows_of(path)
    problems = [item for item in items if isinstance(item, RowProblem)]
    assert [p.index for p in problems] == [1, 2, 3, 4]
    assert problems[0].reason.startswith("line 2: invalid JSON")
    assert problems[1].reason == 'line 3: no "response" field'
    assert problems[2].reason == "line 4: response should be text, got a number"
    assert problems[3].reason == "line 5: the record should be an object, got a list"
    assert texts(items) == [(0, PAIRS[0]["prompt"], PAIRS[0]["response"]), (5, PAIRS[1]["prompt"], PAIRS[1]["response"])]


def test_malformed_rows_in_csv_sharegpt_and_messages(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text('prompt,response\n"a","b"\n"only one field"\n"c","d"\n', encoding="utf-8")
    items = rows_of(path)
    assert [(p.index, p.reason) for p in items if isinstance(p, RowProblem)] == [
        (1, "row 2: 1 fields where the header has 2 (line 3)")]
    assert texts(items) == [(0, "a", "b"), (2, "c", "d")]
    share = write_jsonl(tmp_path / "s.jsonl", SHAREGPT[1:] + [{"conversations": [{"from": "human", "value": "x"}]}])
    assert [p.reason for p in rows_of(share) if isinstance(p, RowProblem)] == [
        "line 2: the conversation has no assistant (gpt) turn to import"]
    chat = write_jsonl(tmp_path / "m.jsonl", MESSAGES + [{"messages": [{"role": "user", "content": "unanswered"}]}])
    assert [p.reason for p in rows_of(chat) if isinstance(p, RowProblem)] == [
        "line 3: the last message is not the assistant's: no response"]


def test_broken_json_array_keeps_what_was_read(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(PAIRS)[:-30], encoding="utf-8")
    items = rows_of(path)
    assert texts(items)[:2] == [(0, PAIRS[0]["prompt"], PAIRS[0]["response"]), (1, PAIRS[1]["prompt"], PAIRS[1]["response"])]
    assert isinstance(items[-1], RowProblem) and "cannot be read" in items[-1].reason


@pytest.mark.parametrize(("content", "message"), [
    (b"", "the file is empty"),
    (b"  \n\n", "the file is empty"),
    (b"[]", "holds no records"),
    (b"prompt,response\n", "holds no records"),
    ('{"prompt": "caf\u00e9", "response": "x"}\n'.encode("latin-1"), r"not UTF-8 text \(byte 0xe9 at offset 15\)"),
    ('[{"prompt": "a"}]'.encode("utf-16"), "UTF-16 text, not UTF-8"),
    (b"just some words and no structure\nmore words\n", "not JSON"),
    (b'{"title": "x", "body": "y"}\n', 'not a dataset shape Stillroom knows: its first record has the fields: title, body'),
    (b"[1, 2, 3]", "its first record is a number, not an object"),
    (b"{oops\n{also bad\n", "not valid JSON"),
])
def test_files_that_cannot_be_read_name_the_problem(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "data.jsonl"
    if message == "holds no records" and content.startswith(b"prompt"):
        path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=message) as caught:
        detect_shape(path)
    assert str(path) in str(caught.value)


def test_missing_file_and_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        detect_shape(tmp_path / "absent.jsonl")
    with pytest.raises(DatasetError, match="not a file"):
        detect_shape(tmp_path)


def test_not_a_parquet_file_and_a_sqlite_file(tmp_path: Path) -> None:
    fake = tmp_path / "fake.parquet"
    fake.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(DatasetError, match="not a readable Parquet file"):
        detect_shape(fake)
    db = tmp_path / "ledger.db"
    db.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    with pytest.raises(DatasetError, match="an SQLite database, not a dataset file"):
        detect_shape(db)


def test_a_later_non_utf8_line_is_a_row_problem(tmp_path: Path) -> None:
    path = tmp_path / "late.jsonl"
    path.write_bytes(json.dumps(PAIRS[0]).encode() + b"\n" + '{"prompt": "\u00e9", "response": "x"}'.encode("latin-1")
                     + b"\n" + json.dumps(PAIRS[1]).encode() + b"\n")
    items = rows_of(path)
    assert [(p.index, p.reason) for p in items if isinstance(p, RowProblem)] == [(1, "line 2: the line is not valid UTF-8")]
    assert len(texts(items)) == 2


def test_streaming_progress_preview_and_sha256(tmp_path: Path) -> None:
    many = [{"prompt": f"p{i}", "response": f"r{i}"} for i in range(5000)]
    path = write_jsonl(tmp_path / "many.jsonl", many)
    shape = detect_shape(path)
    reader = RowReader(path, shape)
    seen = 0
    for item in reader:
        seen += 1
        assert reader.done <= reader.total  # type: ignore[operator]
    assert seen == 5000 and reader.done == reader.total == path.stat().st_size
    assert texts(preview(path, shape, 3)) == [(0, "p0", "r0"), (1, "p1", "r1"), (2, "p2", "r2")]
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    parquet = write_parquet(tmp_path / "many.parquet", many)
    reader = RowReader(parquet, detect_shape(parquet))
    assert sum(1 for _ in reader) == 5000 and (reader.done, reader.total, reader.unit) == (5000, 5000, "rows")


def test_column_types_for_croissant(tmp_path: Path) -> None:
    records = [{"prompt": "a", "response": "b", "n": 1, "score": 0.5, "ok": True, "tags": ["x"]},
               {"prompt": "c", "response": "d", "n": 2, "score": 1, "ok": False, "tags": []}]
    shape = detect_shape(write_jsonl(tmp_path / "t.jsonl", records))
    assert shape.column_types == {"prompt": "text", "response": "text", "n": "integer", "score": "float",
                                  "ok": "boolean", "tags": "json"}
    shape = detect_shape(write_csv(tmp_path / "t.csv", records))
    assert shape.column_types["n"] == "integer" and shape.column_types["score"] == "float"
    assert shape.column_types["ok"] == "boolean"
    shape = detect_shape(write_parquet(tmp_path / "t.parquet", records))
    assert shape.column_types == {"prompt": "text", "response": "text", "n": "integer", "score": "float",
                                  "ok": "boolean", "tags": "json"}
    assert "JSON Lines" in detect_shape(tmp_path / "t.jsonl").describe()


def test_a_latin1_csv_with_an_ascii_header_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("prompt,response\ncaf\u00e9,cr\u00e8me\nna\u00efve,r\u00e9sum\u00e9\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="not UTF-8 text: none of its first records can be read"):
        detect_shape(path)


def test_tsv_and_a_json_stream(tmp_path: Path) -> None:
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("question\tanswer\nWhy, really?\tBecause, simply.\n", encoding="utf-8")
    shape = detect_shape(tsv)
    assert (shape.file_format, shape.delimiter, shape.fields) == ("csv", "\t", {"prompt": "question", "response": "answer"})
    assert texts(list(iter_rows(tsv, shape))) == [(0, "Why, really?", "Because, simply.")]
    stream = tmp_path / "pretty.json"
    stream.write_text("\n".join(json.dumps(p, indent=2) for p in PAIRS), encoding="utf-8")
    shape = detect_shape(stream)
    assert (shape.file_format, shape.container) == ("json", "json-stream")
    assert len(texts(list(iter_rows(stream, shape)))) == 3


def test_damaged_parquet_data_is_a_dataset_error(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "d.parquet", [{"prompt": f"p{i}", "response": "r" * 50} for i in range(100)])
    data = bytearray(path.read_bytes())
    data[200:400] = b"\xff" * 200  # inside the first row group's pages
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="Parquet"):
        list(iter_rows(path, detect_shape(path)))
