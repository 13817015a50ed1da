"""Export formats re-read correctly: JSONL (every field), ShareGPT (conversations), Markdown."""

from __future__ import annotations

import json
import re
from pathlib import Path

from app.core.store import Ledger
from app.core.store.export import export_rows
from app.core.store.queries import LogFilter, iter_generations
from tests.core.records import record


def seed(ledger: Ledger) -> None:
    ledger.append(record(1, prompt="Plain completion with ``` fences inside", response="```py\nprint(1)\n```"))
    history = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]
    ledger.append(record(2, mode="chat", conversation_id="conv", messages=history, system_prompt="Be kind.",
                         prompt="Hi", response="Hello!", source="chat"))
    ledger.append(record(3, mode="chat", conversation_id="conv", source="chat", prompt="How are you?",
                         messages=history + [{"role": "assistant", "content": "Hello!"},
                                             {"role": "user", "content": "How are you?"}],
                         system_prompt="Be kind.", response="Fine, thanks."))
    ledger.append(record(4, status="cancelled", response="half an ans", workflow="other"))


def test_jsonl_round_trips_every_field(ledger: Ledger, tmp_path: Path) -> None:
    seed(ledger)
    out = tmp_path / "log.jsonl"
    assert export_rows(iter_generations(ledger.db), "jsonl", out) == 4
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == list(iter_generations(ledger.db))
    assert rows[2]["messages"][-1]["content"] == "How are you?" and rows[3]["status"] == "cancelled"


def test_jsonl_respects_the_filter(ledger: Ledger, tmp_path: Path) -> None:
    seed(ledger)
    out = tmp_path / "other.jsonl"
    assert export_rows(iter_generations(ledger.db, LogFilter(workflow="other")), "jsonl", out) == 1


def test_sharegpt_has_one_record_per_conversation_with_whole_history(ledger: Ledger, tmp_path: Path) -> None:
    seed(ledger)
    out = tmp_path / "sharegpt.json"
    assert export_rows(iter_generations(ledger.db), "sharegpt", out) == 2  # cancelled row left out
    data = json.loads(out.read_text())
    conversation = next(item for item in data if item["id"] == "conv")
    assert [(t["from"], t["value"]) for t in conversation["conversations"]] == [
        ("system", "Be kind."), ("human", "Hi"), ("gpt", "Hello!"), ("human", "How are you?"),
        ("gpt", "Fine, thanks.")]
    single = next(item for item in data if item["id"] != "conv")
    rows = {row["id"]: row for row in iter_generations(ledger.db)}
    assert single["conversations"][-1] == {"from": "gpt", "value": "```py\nprint(1)\n```", "stillroom_generation_id": 1,
                                           "model": "Test Model", "started_at": rows[1]["started_at"]}
    # each gpt turn names the generation it is, its model and when it started
    assert [(t.get("stillroom_generation_id"), t.get("started_at")) for t in conversation["conversations"]] == [
        (None, None), (None, None), (2, rows[2]["started_at"]), (None, None), (3, rows[3]["started_at"])]


def test_markdown_keeps_text_intact_even_with_fences(ledger: Ledger, tmp_path: Path) -> None:
    seed(ledger)
    out = tmp_path / "log.md"
    assert export_rows(iter_generations(ledger.db), "markdown", out) == 4
    text = out.read_text()
    assert re.findall(r"^## Generation (\d+)$", text, re.M) == ["1", "2", "3", "4"]
    blocks = re.findall(r"^(`{3,})text\n(.*?)\n\1$", text, re.M | re.S)
    contents = [body for _, body in blocks]
    assert "```py\nprint(1)\n```" in contents and "Plain completion with ``` fences inside" in contents
    assert "Fine, thanks." in contents and "half an ans" in contents
