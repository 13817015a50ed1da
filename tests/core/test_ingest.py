"""Import of datasets and logs into the ledger: each format from recorded samples, detection,
de-duplication, malformed records, streaming, batching and cancel. Real SQLite, no model."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.cancel import CancelToken
from app.core.ingest import (
    ImportFileError,
    ImportFormatError,
    ImportProgress,
    ImportSummary,
    detect,
    import_file,
    run_import,
)
from app.core.ingest import containers
from app.core.progress import drive
from app.core.store import Ledger
from app.core.store.queries import LogFilter, list_generations

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "import"


def make_llm_logs(path: Path) -> Path:
    """A logs.db in simonw/llm's schema with the recorded rows of llm_logs.sql."""
    conn = sqlite3.connect(path)
    conn.executescript((FIXTURES / "llm_logs.sql").read_text(encoding="utf-8"))
    conn.close()
    return path


def rows_of(ledger: Ledger, **flt: Any) -> list[dict[str, Any]]:
    return list_generations(ledger.db, LogFilter(**flt), limit=None, newest_first=False)


def imp(row: dict[str, Any]) -> dict[str, Any]:
    return row["meta"]["import"]


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger.open(tmp_path / "ledger.db")
    yield opened
    opened.close()


# -- each format, from recorded samples ------------------------------------------------------------


def test_openai_messages(ledger: Ledger) -> None:
    summary = run_import(ledger, FIXTURES / "openai_messages.jsonl", "tutor")
    assert (summary.format, summary.records, summary.rows_written, summary.malformed) == ("openai-messages", 4, 4, 0)
    first, multi, no_answer, tools = rows_of(ledger)
    assert first["source"] == "import" and first["workflow"] == "tutor" and first["status"] == "ok"
    assert first["mode"] == "chat" and first["model_sha256"] is None
    assert first["system_prompt"] == "You are a patient chemistry tutor."
    assert first["prompt"] == "Why does salt lower the freezing point of water?"
    assert first["response"].startswith("Dissolved ions")
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    assert [m["role"] for m in multi["messages"]] == ["system", "user", "assistant", "user"]
    assert multi["prompt"] == "And who worked there?" and multi["response"].startswith("Usually")
    assert no_answer["response"] is None and no_answer["prompt"].startswith("Describe this picture")
    assert "[image_url]" in no_answer["prompt"]
    assert tools["messages"][1]["tool_calls"][0]["function"]["name"] == "lookup_property"
    assert tools["messages"][2] == {"role": "tool", "content": "78.37 C", "tool_call_id": "call_8kq2"}
    assert tools["params"]["parallel_tool_calls"] is False and tools["params"]["tools"][0]["type"] == "function"
    assert tools["response"] == "Ethanol boils at about 78.4 C at sea level."
    assert first["prompt_hash"] and first["response_hash"]


def test_import_meta_names_file_hash_format_and_position(ledger: Ledger) -> None:
    path = FIXTURES / "openai_messages.jsonl"
    run_import(ledger, path, "tutor")
    metas = [imp(row) for row in rows_of(ledger)]
    assert [m["record"] for m in metas] == [1, 2, 3, 4]
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    for meta in metas:
        assert meta["file"] == "openai_messages.jsonl" and meta["file_sha256"] == sha
        assert meta["format"] == "openai-messages" and meta["time_from"] == "import"
        assert meta["imported_at"]


def test_batch_input_alone_holds_requests(ledger: Ledger) -> None:
    summary = run_import(ledger, FIXTURES / "openai_batch_input.jsonl", "grading")
    assert summary.format == "openai-batch-input" and summary.rows_written == 3
    grade, haiku, bad = rows_of(ledger)
    assert grade["response"] is None and grade["model_name"] == "gpt-4o-mini"
    assert grade["params"] == {"temperature": 0, "max_tokens": 1, "logprobs": True, "top_logprobs": 5}
    assert grade["logprobs_requested"] == 1 and haiku["logprobs_requested"] == 0
    assert haiku["seed"] == 1234 and haiku["params"]["temperature"] == 0.9
    assert grade["system_prompt"] == "You grade answers from 1 to 5."
    assert imp(grade)["custom_id"] == "request-1" and imp(grade)["url"] == "/v1/chat/completions"


def test_batch_output_alone_holds_results_and_errors(ledger: Ledger) -> None:
    summary = run_import(ledger, FIXTURES / "openai_batch_output.jsonl", "grading")
    assert summary.format == "openai-batch-output" and summary.rows_written == 3
    haiku, grade, failed = rows_of(ledger)
    assert haiku["response"].startswith("Copper curves") and haiku["model_name"] == "gpt-4o-mini-2024-07-18"
    assert (haiku["prompt_tokens"], haiku["completion_tokens"], haiku["finish_reason"]) == (16, 19, "stop")
    assert haiku["started_at"] == "2025-02-04T07:40:21.000000+00:00" and imp(haiku)["time_from"] == "record"
    assert haiku["prompt"] is None and imp(haiku)["custom_id"] == "request-2"
    assert grade["logprobs"]["content"][0]["token"] == "5" and grade["finish_reason"] == "length"
    assert failed["status"] == "error" and "max_tokens" in failed["error"] and failed["response"] is None


@pytest.mark.parametrize("reverse", [False, True])
def test_batch_input_and_output_joined_by_custom_id(ledger: Ledger, reverse: bool) -> None:
    out, inp = FIXTURES / "openai_batch_output.jsonl", FIXTURES / "openai_batch_input.jsonl"
    summary = run_import(ledger, inp if reverse else out, "grading", join=out if reverse else inp)
    assert summary.format == "openai-batch-output" and summary.file == str(out)
    assert (summary.rows_written, summary.unmatched_results, summary.unmatched_requests) == (3, 0, 0)
    haiku, grade, failed = rows_of(ledger)
    assert haiku["prompt"] == "Write a haiku about a copper still." and haiku["response"].startswith("Copper")
    assert haiku["seed"] == 1234 and haiku["model_name"] == "gpt-4o-mini-2024-07-18"
    assert grade["params"]["top_logprobs"] == 5 and grade["logprobs_requested"] == 1 and grade["response"] == "5"
    assert failed["status"] == "error" and failed["prompt"] == "Summarize the history of distillation."
    meta = imp(grade)
    assert meta["request_file"] == "openai_batch_input.jsonl" and meta["request_record"] == 1
    assert meta["request_found"] is True and meta["record"] == 2
    assert meta["request_file_sha256"] == hashlib.sha256(inp.read_bytes()).hexdigest()


def test_join_counts_unmatched_both_ways(ledger: Ledger, tmp_path: Path) -> None:
    inputs = (FIXTURES / "openai_batch_input.jsonl").read_text().splitlines()
    outputs = (FIXTURES / "openai_batch_output.jsonl").read_text().splitlines()
    stray = json.loads(outputs[0]) | {"custom_id": "request-99"}
    (tmp_path / "in.jsonl").write_text("\n".join(inputs) + "\n")
    (tmp_path / "out.jsonl").write_text("\n".join([outputs[1], json.dumps(stray)]) + "\n")
    summary = run_import(ledger, tmp_path / "out.jsonl", "w", join=tmp_path / "in.jsonl")
    assert (summary.rows_written, summary.unmatched_results, summary.unmatched_requests) == (2, 1, 2)
    _, unmatched = rows_of(ledger)
    assert unmatched["prompt"] is None and imp(unmatched)["request_found"] is False


def test_join_refuses_two_files_that_are_not_a_batch_pair(ledger: Ledger) -> None:
    with pytest.raises(ImportFormatError, match="input file with its output file"):
        run_import(ledger, FIXTURES / "openai_batch_output.jsonl", "w", join=FIXTURES / "pairs.jsonl")
    assert ledger.head()[0] == 0


def test_sharegpt_one_row_per_assistant_turn(ledger: Ledger) -> None:
    summary = run_import(ledger, FIXTURES / "sharegpt.json", "herbal")
    assert (summary.format, summary.records, summary.rows_written) == ("sharegpt", 2, 3)
    first, second, herbalist = rows_of(ledger)
    assert first["messages"] == [{"role": "user", "content": "How do I clean a copper alembic?"}]
    assert second["prompt"] == "Can I use lemon juice instead of vinegar?"
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert second["response"] == "Yes, the citric acid works the same way."
    assert (imp(first)["record"], imp(first)["turn"], imp(second)["turn"]) == (1, 2, 4)
    assert imp(first)["id"] == "conv-0001"
    assert herbalist["system_prompt"] == "You are a herbalist from the 1700s."
    assert herbalist["model_name"] == "local-llama-3-8b" and imp(herbalist)["record"] == 2


def test_sharegpt_jsonl_with_llama_factory_keys(ledger: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    path.write_text(json.dumps({"system": "Use tools.", "conversations": [
        {"from": "human", "value": "Weather in Oslo?"},
        {"from": "function_call", "value": "{\"name\": \"weather\"}"},
        {"from": "observation", "value": "4 C, rain"},
        {"from": "gpt", "value": "It is 4 C and raining."}]}) + "\n")
    summary = run_import(ledger, path, "tools")
    assert summary.format == "sharegpt" and summary.rows_written == 1
    (row,) = rows_of(ledger)
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant", "tool"]
    assert row["system_prompt"] == "Use tools." and row["response"] == "It is 4 C and raining."


def test_alpaca(ledger: Ledger) -> None:
    summary = run_import(ledger, FIXTURES / "alpaca.json", "instruct")
    assert (summary.format, summary.rows_written) == ("alpaca", 3)
    herbs, convert, _ = rows_of(ledger)
    assert herbs["prompt"] == "Name three herbs that were commonly distilled in a stillroom."
    assert convert["prompt"] == "Convert the temperature to Fahrenheit.\n\n78 degrees Celsius"
    assert convert["response"].startswith("78 degrees Celsius is about")
    assert convert["messages"] == [{"role": "user", "content": convert["prompt"]}]


def test_alpaca_with_system_and_history(ledger: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "alpaca_history.json"
    path.write_text(json.dumps([{"instruction": "And in Fahrenheit?", "input": "", "output": "About 172 F.",
                                 "system": "Be exact.", "history": [["Boiling point of ethanol?", "78 C."]]}]))
    run_import(ledger, path, "instruct")
    (row,) = rows_of(ledger)
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant", "user"]
    assert row["system_prompt"] == "Be exact." and row["prompt"] == "And in Fahrenheit?"


def test_pairs_jsonl_and_csv(ledger: Ledger) -> None:
    assert run_import(ledger, FIXTURES / "pairs.jsonl", "qa").format == "pairs"
    csv_summary = run_import(ledger, FIXTURES / "pairs.csv", "qa")
    assert (csv_summary.format, csv_summary.rows_written, csv_summary.malformed) == ("pairs", 3, 0)
    rows = rows_of(ledger)
    assert rows[1]["model_name"] == "qwen2.5-1.5b-instruct"
    copper = rows[4]
    assert copper["prompt"] == "Why use copper, not iron?"
    assert copper["response"] == "Copper conducts heat well, and it removes sulphur compounds,\nwhich improves the taste."
    assert [imp(r)["record"] for r in rows[3:]] == [1, 2, 3]


def test_pairs_with_fields_named_by_hand(ledger: Ledger) -> None:
    with pytest.raises(ImportFormatError, match="custom_fields.jsonl"):
        run_import(ledger, FIXTURES / "custom_fields.jsonl", "qa")
    summary = run_import(ledger, FIXTURES / "custom_fields.jsonl", "qa", prompt_field="q", response_field="a")
    assert (summary.format, summary.rows_written) == ("pairs", 2)
    assert rows_of(ledger)[0]["prompt"] == "What is maceration?"


def test_tsv_and_semicolon_csv_and_column_names(ledger: Ledger, tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text("Instruction\tOutput\nSay hi\tHi\n")
    (tmp_path / "b.csv").write_text("input;output\nOne;Two\n")
    assert run_import(ledger, tmp_path / "a.tsv", "t").format == "pairs"  # column names ignore case
    assert run_import(ledger, tmp_path / "b.csv", "t").format == "pairs"
    assert [(r["prompt"], r["response"]) for r in rows_of(ledger)] == [("Say hi", "Hi"), ("One", "Two")]


def test_llm_logs_db(ledger: Ledger, tmp_path: Path) -> None:
    logs = make_llm_logs(tmp_path / "logs.db")
    summary = run_import(ledger, logs, "llm")
    assert (summary.format, summary.records, summary.rows_written, summary.malformed) == ("llm-logs", 3, 3, 0)
    first, follow_up, cat = rows_of(ledger)
    assert first["model_name"] == "gpt-4o-mini-2024-07-18" and imp(first)["model_alias"] == "gpt-4o-mini"
    assert first["system_prompt"] == "Be concise." and first["prompt"] == "Explain reflux in a still"
    assert first["params"] == {"temperature": 0.2} and first["finish_reason"] == "stop"
    assert (first["prompt_tokens"], first["completion_tokens"], first["duration_ms"]) == (19, 25, 1874.0)
    assert first["started_at"] == "2025-03-24T07:26:53.589793+00:00"
    assert imp(first)["conversation_name"] == "Explain reflux in a still"
    assert imp(first)["llm_id"] == "01jq8v3k2m4n5p6q7r8s9t0v1x"
    assert [m["role"] for m in follow_up["messages"]] == ["system", "user", "assistant", "user"]
    assert follow_up["prompt"] == "Why does that help?"
    assert cat["messages"] == [{"role": "user", "content": "Three names for a cat"}]
    assert cat["seed"] == 7 and cat["started_at"] == "2023-07-12T03:37:47.371010+00:00"


def test_llm_logs_that_grew_import_only_the_new_rows(ledger: Ledger, tmp_path: Path) -> None:
    logs = make_llm_logs(tmp_path / "logs.db")
    run_import(ledger, logs, "llm")
    conn = sqlite3.connect(logs)
    conn.execute("INSERT INTO responses (id, model, prompt, response, datetime_utc) VALUES "
                 "('01jqnew', 'gpt-4o-mini', 'One more?', 'Yes.', '2025-04-01T00:00:00+00:00')")
    conn.commit()
    conn.close()
    summary = run_import(ledger, logs, "llm")
    assert (summary.records, summary.rows_written, summary.skipped) == (4, 1, 3)
    assert rows_of(ledger)[-1]["prompt"] == "One more?"


def test_llm_logs_is_opened_read_only(ledger: Ledger, tmp_path: Path) -> None:
    logs = make_llm_logs(tmp_path / "logs.db")
    before = logs.read_bytes()
    logs.chmod(0o444)
    run_import(ledger, logs, "llm")
    assert logs.read_bytes() == before


# -- detection ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "fmt", "container"), [
    ("openai_messages.jsonl", "openai-messages", "jsonl"),
    ("openai_batch_input.jsonl", "openai-batch-input", "jsonl"),
    ("openai_batch_output.jsonl", "openai-batch-output", "jsonl"),
    ("sharegpt.json", "sharegpt", "json-array"),
    ("alpaca.json", "alpaca", "json-array"),
    ("pairs.jsonl", "pairs", "jsonl"),
    ("pairs.csv", "pairs", "csv"),
    ("malformed_messages.jsonl", "openai-messages", "jsonl"),
])
def test_auto_detection(name: str, fmt: str, container: str) -> None:
    detected = detect(FIXTURES / name)
    assert (detected.format, detected.container) == (fmt, container)


def test_detection_of_llm_logs_and_of_content_without_a_telling_extension(tmp_path: Path) -> None:
    assert detect(make_llm_logs(tmp_path / "history.sqlite")).format == "llm-logs"
    shutil.copy(FIXTURES / "sharegpt.json", tmp_path / "data.txt")
    assert detect(tmp_path / "data.txt").format == "sharegpt"
    pretty = tmp_path / "pretty.json"
    pretty.write_text("\n".join(json.dumps(r, indent=2) for r in json.loads((FIXTURES / "alpaca.json").read_text())))
    assert (detect(pretty).format, detect(pretty).container) == ("alpaca", "json-stream")


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"\x00\x01\x02binary", "binary"),
    (b"# A heading\nplain prose\n", "neither JSON"),
    (b'{"colour": "red", "size": 3}\n', "colour, size"),
    (b"[1, 2, 3]", "a number, not an object"),
    (b"{broken\n{also broken\n", "no record could be read"),
])
def test_unknown_formats_get_one_clear_error(ledger: Ledger, tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "mystery.jsonl"
    path.write_bytes(content)
    with pytest.raises(ImportFormatError, match=message) as caught:
        run_import(ledger, path, "w")
    assert "mystery.jsonl" in str(caught.value)
    assert ledger.head()[0] == 0


def test_an_sqlite_file_that_is_not_llm_logs(ledger: Ledger, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(ImportFormatError, match="neither a `responses` table nor `turns`, `messages` and `parts`"):
        run_import(ledger, other, "w")
    with pytest.raises(ImportFormatError, match="not an SQLite database"):
        run_import(ledger, FIXTURES / "pairs.jsonl", "w", fmt="llm-logs")


def test_a_format_asked_for_that_the_file_is_not(ledger: Ledger) -> None:
    with pytest.raises(ImportFormatError, match="reads as ShareGPT"):
        run_import(ledger, FIXTURES / "alpaca.json", "w", fmt="sharegpt")
    with pytest.raises(ImportFileError, match="no such file"):
        run_import(ledger, FIXTURES / "missing.jsonl", "w")
    with pytest.raises(ValueError, match="workflow"):
        run_import(ledger, FIXTURES / "alpaca.json", " ")
    assert ledger.head()[0] == 0


# -- de-duplication and malformed records -----------------------------------------------------------


def test_reimport_skips_what_is_already_there(ledger: Ledger, tmp_path: Path) -> None:
    first = run_import(ledger, FIXTURES / "sharegpt.json", "w")
    again = run_import(ledger, FIXTURES / "sharegpt.json", "other-workflow")
    assert (again.records, again.rows_written, again.skipped) == (2, 0, 2)
    copy = tmp_path / "renamed.json"
    shutil.copy(FIXTURES / "sharegpt.json", copy)
    assert run_import(ledger, copy, "w").skipped == 2  # same bytes, same records
    assert len(rows_of(ledger)) == first.rows_written == 3
    changed = tmp_path / "changed.json"
    changed.write_text(copy.read_text().replace("lemon juice", "lime juice"))
    assert run_import(ledger, changed, "w").rows_written == 3
    assert ledger.verify().ok


def test_malformed_records_are_counted_with_positions(ledger: Ledger) -> None:
    summary = run_import(ledger, FIXTURES / "malformed_messages.jsonl", "w")
    assert (summary.records, summary.rows_written, summary.malformed) == (6, 3, 4)
    assert [(i.unit, i.position) for i in summary.issues] == [("line", 2), ("line", 4), ("line", 6), ("line", 8)]
    assert "invalid JSON" in summary.issues[0].message
    assert "should be a list" in summary.issues[1].message
    assert [imp(r)["record"] for r in rows_of(ledger)] == [1, 3, 7]
    assert str(summary.issues[3]) == "line 8: the record should be an object, got a list"
    assert json.loads(json.dumps(summary.as_dict()))["issues"][0].startswith("line 2: invalid JSON")
    assert ledger.verify().ok


@pytest.mark.parametrize(("line", "message"), [
    ('{"messages": [{"role": "user", "content": "\\ud800"}]}', "lone surrogate"),
    ('{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', "JSON"),
    ('{"messages": [{"role": "user", "content": "hi"}], "seed": 99999999999999999999999}', "out of range"),
    ('{"messages": [{"role": "user", "content": 5}]}', "string or a list"),
    ('{"messages": []}', "empty"),
])
def test_values_the_ledger_cannot_store_are_malformed_records(ledger: Ledger, tmp_path: Path, line: str,
                                                              message: str) -> None:
    path = tmp_path / "x.jsonl"
    good = '{"messages": [{"role": "user", "content": "fine"}]}'
    path.write_text(f"{good}\n{line}\n")
    summary = run_import(ledger, path, "w")
    assert (summary.rows_written, summary.malformed) == (1, 1)
    assert summary.issues[0].position == 2 and message in summary.issues[0].message
    assert ledger.verify().ok


def test_csv_rows_with_the_wrong_shape_or_bad_utf8(ledger: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"prompt,response\nok,fine\ntoo,many,fields\nbad \xff byte,x\n\nlast,one\n")
    summary = run_import(ledger, path, "w")
    assert (summary.rows_written, summary.malformed) == (2, 2)
    assert [(i.unit, i.position) for i in summary.issues] == [("row", 2), ("row", 3)]
    assert [imp(r)["record"] for r in rows_of(ledger)] == [1, 4]


# -- streaming JSON --------------------------------------------------------------------------------


def test_json_array_read_in_tiny_chunks(ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containers, "CHUNK_BYTES", 7)
    records = [{"prompt": f"Question {i} ünïcødé ✓", "response": f"Answer {i}", "n": 12345678 + i} for i in range(40)]
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    summary = run_import(ledger, path, "w")
    assert (summary.records, summary.rows_written, summary.malformed) == (40, 40, 0)
    assert [r["prompt"] for r in rows_of(ledger)] == [r["prompt"] for r in records]


@pytest.mark.parametrize(("tail", "written", "message"), [
    ('{"prompt": "c", "response": "d"}', 2, "not closed"),
    ('{"prompt": "c", "respo', 1, "invalid JSON"),
    ('{"prompt": "c", "response": "d"}] trailing', 2, "after the end"),
    ('{"prompt": "c", "response": "d"} {"x": 1}]', 2, "expected ',' or ']'"),
])
def test_a_broken_json_array_keeps_what_came_before(ledger: Ledger, tmp_path: Path, tail: str, written: int,
                                                    message: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[{"prompt": "a", "response": "b"},\n' + tail)
    summary = run_import(ledger, path, "w")
    assert (summary.rows_written, summary.malformed) == (written, 1)
    assert message in summary.issues[0].message
    assert ledger.verify().ok


def test_jsonl_line_over_the_size_cap_is_one_malformed_line(ledger: Ledger, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containers, "MAX_RECORD_BYTES", 200)
    path = tmp_path / "x.jsonl"
    long = json.dumps({"prompt": "p" * 1000, "response": "r"})
    path.write_text("\n".join([json.dumps({"prompt": "a", "response": "b"}), long,
                               json.dumps({"prompt": "c", "response": "d"})]) + "\n")
    summary = run_import(ledger, path, "w", fmt="pairs")
    assert (summary.rows_written, summary.malformed, summary.issues[0].position) == (2, 1, 2)


# -- batches, progress and cancel -------------------------------------------------------------------


def pairs_file(path: Path, count: int) -> Path:
    path.write_text("".join(json.dumps({"prompt": f"p{i}", "response": f"r{i}"}) + "\n" for i in range(count)))
    return path


def test_progress_then_summary_and_batches(ledger: Ledger, tmp_path: Path) -> None:
    path = pairs_file(tmp_path / "many.jsonl", 25)
    items: list[ImportProgress] = []
    summary = drive(import_file(ledger, path, "w", batch_rows=10), items.append)
    assert isinstance(summary, ImportSummary) and all(isinstance(i, ImportProgress) for i in items)
    written = [i.rows_written for i in items]
    assert written == sorted(written) and 10 in written and 20 in written
    assert items[-1].fraction == 1.0 and items[-1].unit == "bytes"
    assert summary.rows_written == 25 and (summary.first_id, summary.last_id) == (1, 25)


def test_cancel_keeps_committed_batches_and_a_rerun_continues(ledger: Ledger, tmp_path: Path) -> None:
    path = pairs_file(tmp_path / "many.jsonl", 25)
    cancel = CancelToken()
    summary = drive(import_file(ledger, path, "w", cancel=cancel, batch_rows=10),
                    lambda item: item.rows_written >= 10 and cancel.cancel())
    assert summary is not None and summary.cancelled and summary.rows_written == 10
    assert len(rows_of(ledger)) == 10  # the pending rows of the next batch were dropped
    rest = run_import(ledger, path, "w")
    assert (rest.skipped, rest.rows_written) == (10, 15)
    assert [imp(r)["record"] for r in rows_of(ledger)] == list(range(1, 26))
    assert ledger.verify().ok


def test_closing_the_generator_writes_nothing_pending(ledger: Ledger, tmp_path: Path) -> None:
    path = pairs_file(tmp_path / "many.jsonl", 25)
    items = import_file(ledger, path, "w", batch_rows=10)
    for item in items:
        if item.rows_written == 10:
            break
    items.close()
    assert len(rows_of(ledger)) == 10 and ledger.verify().ok


def test_a_sharegpt_conversation_is_never_split_across_transactions(ledger: Ledger, tmp_path: Path) -> None:
    turns = [{"from": "human" if i % 2 == 0 else "gpt", "value": f"t{i}"} for i in range(8)]
    path = tmp_path / "long.jsonl"
    path.write_text("".join(json.dumps({"conversations": turns}) + "\n" for _ in range(3)))
    cancel = CancelToken()
    drive(import_file(ledger, path, "w", cancel=cancel, batch_rows=3),
          lambda item: item.rows_written and cancel.cancel())
    assert len(rows_of(ledger)) == 4  # one whole conversation of 4 assistant turns
    assert run_import(ledger, path, "w").rows_written == 8
