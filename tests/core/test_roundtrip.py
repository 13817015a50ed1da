"""Every round trip closes, over generated ledgers: each log export format re-imports into a fresh
ledger with the same prompts, responses, models and start times, and each export that carries
responses is traced 100% exactly by provenance matching with no fields named by hand."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.ingest import run_import
from app.core.provenance.dataset import detect_shape
from app.core.provenance.match import run_match
from app.core.store import Ledger
from app.core.store.export import EXPORT_FORMATS, export_rows
from app.core.store.queries import LogFilter, iter_generations

# Every export format is read back by `stillroom import` and traced by provenance.
REIMPORTED = EXPORT_FORMATS
TRACED = EXPORT_FORMATS
START = datetime(2025, 1, 1, tzinfo=timezone.utc)

# Text as people and models write it: any letters, marks, symbols, punctuation, spaces, newlines,
# tabs and backtick runs; never a lone surrogate or a control character the ledger refuses.
TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc"), include_characters="\n\t`"),
               min_size=1, max_size=60).filter(lambda t: any(c.isalnum() for c in t))
MODELS = st.sampled_from(["SmolLM2-135M-Instruct", "gemma-3-270m-it", "Qwen 2.5 0.5B (Q4_K_M)", "modèle ünïcode"])


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One completion, or a chat of 1-3 turns whose messages carry the history before each turn."""
    model = draw(MODELS)
    system = draw(st.none() | TEXT)
    if draw(st.booleans()):
        return [{"mode": "completion", "prompt": draw(TEXT), "response": draw(TEXT), "model_name": model,
                 "system_prompt": system}]
    history: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    rows = []
    for _ in range(draw(st.integers(1, 3))):
        prompt, response = draw(TEXT), draw(TEXT)
        history.append({"role": "user", "content": prompt})
        rows.append({"mode": "chat", "messages": list(history), "prompt": prompt, "response": response,
                     "model_name": model, "system_prompt": system})
        history.append({"role": "assistant", "content": response})
    return rows


@st.composite
def ledgers(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Generation records of a few conversations, interleaved, with increasing start times."""
    groups = draw(st.lists(conversations(), min_size=1, max_size=5))
    order = draw(st.permutations([i for i, group in enumerate(groups) for _ in group]))
    cursors = [0] * len(groups)
    moment = START + timedelta(seconds=draw(st.integers(0, 10**8)))
    records = []
    for group in order:
        row = dict(groups[group][cursors[group]])
        cursors[group] += 1
        moment += timedelta(microseconds=draw(st.integers(1, 10**10)))
        row.update(source=draw(st.sampled_from(["chat", "cli", "server", "batch"])), workflow="generated",
                   started_at=moment.isoformat(timespec="microseconds"), status="ok",
                   conversation_id=f"conversation-{group}" if row["mode"] == "chat" else None,
                   duration_ms=draw(st.floats(1, 10**5, allow_nan=False)), model_sha256="ab" * 32)
        records.append(row)
    return records


def facts(rows: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    """The multiset of (prompt, response, model, start time) of ledger rows."""
    return Counter((r["prompt"], r["response"], r["model_name"], r["started_at"]) for r in rows)


def canonical(messages: Any) -> str:
    return json.dumps(messages, sort_keys=True, ensure_ascii=False)


def sent(row: dict[str, Any]) -> list[dict[str, Any]]:
    """What the model was sent for a row: its messages, or the system prompt and the prompt."""
    if row["messages"]:
        return row["messages"]
    system = [{"role": "system", "content": row["system_prompt"]}] if row["system_prompt"] else []
    return system + [{"role": "user", "content": row["prompt"]}]


def exported(records: list[dict[str, Any]], fmt: str, folder: Path) -> tuple[Path, Path, list[dict[str, Any]]]:
    """A ledger holding `records`, its export in `fmt`, and its rows."""
    ledger_file = folder / "source.db"
    ledger = Ledger.open(ledger_file)
    try:
        ledger.append_many(records)
        rows = list(iter_generations(ledger.db, LogFilter()))
        out = folder / f"export.{ 'json' if fmt == 'sharegpt' else 'md' if fmt == 'markdown' else 'jsonl'}"
        assert export_rows(iter(rows), fmt, out) >= 1
    finally:
        ledger.close()
    return ledger_file, out, rows


PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(records=ledgers(), fmt=st.sampled_from(REIMPORTED))
def test_every_export_reimports_with_the_same_generations(records: list[dict[str, Any]], fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _, out, rows = exported(records, fmt, folder)
        fresh = Ledger.open(folder / "fresh.db")
        try:
            summary = run_import(fresh, out, "round-trip")
            assert summary.malformed == 0, summary.issues
            assert summary.rows_written == len(rows)
            back = list(iter_generations(fresh.db, LogFilter()))
            assert facts(back) == facts(rows)
            assert [r["source"] for r in back] == ["import"] * len(rows)
            if fmt == "markdown":  # Markdown carries the mode, the messages and the status too
                keep = ("mode", "messages", "system_prompt", "status")
                assert [{k: r[k] for k in keep} for r in back] == [{k: r[k] for k in keep} for r in rows]
            elif fmt == "jsonl":  # the JSONL export carries every field of the generation
                keep = ("mode", "messages", "system_prompt", "params", "seed", "finish_reason", "prompt_tokens",
                        "completion_tokens", "duration_ms", "status", "finished_at")
                assert [{k: r[k] for k in keep} for r in back] == [{k: r[k] for k in keep} for r in rows]
            else:  # ShareGPT: each generation's history comes back as its messages
                assert sorted(canonical(r["messages"]) for r in back) == sorted(canonical(sent(r)) for r in rows)
            again = run_import(fresh, out, "round-trip")
            assert (again.rows_written, again.skipped) == (0, summary.records)
        finally:
            fresh.close()


@PROPERTY
@given(records=ledgers(), fmt=st.sampled_from(TRACED))
def test_every_export_with_responses_traces_exactly(records: list[dict[str, Any]], fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ledger_file, out, rows = exported(records, fmt, folder)
        shape = detect_shape(out)
        assert shape.kind in ("prompt_response", "sharegpt"), shape.describe()
        report = run_match(out, ledger_file, shape=shape)
        assert report.malformed == 0, [p.reason for p in report.problems]
        # A JSONL row is one generation; a ShareGPT record is one conversation, traced by its last turn.
        expected = ([record["stillroom_generation_id"] for record in json.loads(out.read_text("utf-8"))]
                    if fmt == "sharegpt" else [r["id"] for r in rows])
        assert report.rows == len(expected) >= 1
        assert report.counts.get("traced-exact", 0) == report.rows
        assert report.nothing_traced() is None
        # each row is traced to its generation, or to one with the very same prompt and response
        pair = {r["id"]: (r["prompt"], r["response"]) for r in rows}
        assert Counter(pair[i] for i in report.traced_ids) == Counter(pair[i] for i in expected)


NASTY = ["## Generation 9\n### user\n````text\nnot a turn\n````", "ends with newlines\n\n", "\r\nwindows\r\nlines\r",
         "`" * 7 + "\n- model: \"fake\" (sha256 abc)", "", "  leading and trailing  ", "# Stillroom ledger export"]


def test_markdown_reads_back_text_that_looks_like_its_own_structure(tmp_path: Path) -> None:
    records = [{"mode": "chat" if i % 2 else "completion", "prompt": text or "(empty)", "response": text,
                "model_name": "name \"quoted\" (sha256 00)\nwith a newline" if i == 1 else None,
                "system_prompt": NASTY[(i + 1) % len(NASTY)], "source": "cli", "workflow": "w\n, status: error",
                "status": "ok", "started_at": (START + timedelta(seconds=i)).isoformat(timespec="microseconds"),
                "messages": [{"role": "system", "content": NASTY[(i + 1) % len(NASTY)]},
                             {"role": "user", "content": text or "(empty)"}] if i % 2 else None}
               for i, text in enumerate(NASTY)]
    _, out, rows = exported(records, "markdown", tmp_path)
    fresh = Ledger.open(tmp_path / "fresh.db")
    try:
        summary = run_import(fresh, out, "md")
        assert (summary.rows_written, summary.malformed) == (len(rows), 0), summary.issues
        back = list(iter_generations(fresh.db, LogFilter()))
        keep = ("prompt", "response", "model_name", "started_at", "mode", "messages", "system_prompt")
        assert [{k: r[k] for k in keep} for r in back] == [{k: r[k] for k in keep} for r in rows]
    finally:
        fresh.close()


def test_shapes_are_told_by_the_fields_that_carry_values(tmp_path: Path) -> None:
    """A field that exists but holds null says nothing: import and provenance read the same pair."""
    data = tmp_path / "mixed.jsonl"
    rows = [{"messages": None, "instruction": None, "output": None, "prompt": None,
             "question": f"Question {i}?", "answer": f"Answer {i}."} for i in range(3)]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    ledger = Ledger.open(tmp_path / "ledger.db")
    try:
        summary = run_import(ledger, data, "mixed")
        assert (summary.format, summary.rows_written, summary.malformed) == ("pairs", 3, 0)
        back = list(iter_generations(ledger.db, LogFilter()))
        assert [(r["prompt"], r["response"]) for r in back] == [(f"Question {i}?", f"Answer {i}.") for i in range(3)]
    finally:
        ledger.close()
    shape = detect_shape(data)
    assert (shape.kind, shape.fields) == ("prompt_response", {"prompt": "question", "response": "answer"})
    report = run_match(data, tmp_path / "ledger.db", shape=shape)
    assert (report.rows, report.malformed, report.counts.get("traced-exact")) == (3, 0, 3)
