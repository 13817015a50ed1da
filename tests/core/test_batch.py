"""Batch runs with the real model: spec validation, output rows, pause/cancel and resume (SIGKILL and
resume: tests/reliability/test_sigkill.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.batch.jobs import create_job, done_keys, get_job
from app.core.batch.run import BatchControl, BatchFinished, BatchProgress, run_batch
from app.core.progress import drive
from app.core.batch.spec import BatchSpecError, build_spec, load_spec
from app.core.models.runner import Runner
from app.core.store import Ledger
from app.core.store.queries import LogFilter, list_generations


def write_job(folder: Path, items: int = 3, samples: int = 2, max_tokens: int = 6, **extra: object) -> Path:
    (folder / "inputs.jsonl").write_text("".join(json.dumps({"topic": f"topic {i}", "level": "short"}) + "\n"
                                                 for i in range(items)))
    spec = {"name": "unit", "workflow": "batch-test", "template": "Write a {level} line about {topic}:",
            "inputs": "inputs.jsonl", "samples": samples, "output": "out/result.jsonl",
            "params": {"temperature": 0.7, "max_tokens": max_tokens, "seed": 100}} | extra
    path = folder / "job.yaml"
    import yaml

    path.write_text(yaml.safe_dump(spec))
    return path


def output_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_spec_validation_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(BatchSpecError, match="missing template"):
        build_spec({"name": "x", "inputs": ["a"], "output": "o.jsonl"}, tmp_path)
    with pytest.raises(BatchSpecError, match="input 2 has no value for slot"):
        build_spec({"name": "x", "template": "{a} and {b}", "inputs": [{"a": 1, "b": 2}, {"a": 1}],
                    "output": "o.jsonl"}, tmp_path)
    with pytest.raises(BatchSpecError, match="malformed"):
        build_spec({"name": "x", "template": "{oops", "inputs": ["a"], "output": "o.jsonl"}, tmp_path)
    with pytest.raises(BatchSpecError, match="input file not found"):
        build_spec({"name": "x", "template": "{input}", "inputs": "nope.csv", "output": "o.jsonl"}, tmp_path)
    with pytest.raises(BatchSpecError, match="temperature"):
        build_spec({"name": "x", "template": "{input}", "inputs": ["a"], "output": "o", "params": {"temperature": -1}},
                   tmp_path)
    (tmp_path / "bad.jsonl").write_text('{"input": "ok"}\n{broken\n')
    with pytest.raises(BatchSpecError, match="bad.jsonl line 2"):
        build_spec({"name": "x", "template": "{input}", "inputs": "bad.jsonl", "output": "o"}, tmp_path)
    spec = build_spec({"name": "x", "template": "Say {input}", "inputs": ["hi", "bye"], "samples": 3,
                       "output": "o.jsonl", "params": {"seed": 10}}, tmp_path)
    assert spec.total == 6 and spec.render(spec.items[1]) == "Say bye"
    assert [spec.sampling(1, s).seed for s in range(3)] == [13, 14, 15]


def test_run_writes_output_rows_and_ledger_rows(runner: Runner, ledger: Ledger, tmp_path: Path) -> None:
    job = create_job(ledger.db, load_spec(write_job(tmp_path)))
    progress: list[BatchProgress] = []
    finished = drive(run_batch(ledger, runner, job.id), progress.append)
    assert isinstance(finished, BatchFinished) and finished.status == "done" and finished.done == 6
    assert [p.done for p in progress] == [1, 2, 3, 4, 5, 6] and progress[-1].tokens_per_s
    lines = output_lines(Path(job.output_path))
    assert [(line["item"], line["sample"]) for line in lines] == [(i, s) for i in range(3) for s in range(2)]
    rows = {row["id"]: row for row in list_generations(ledger.db, LogFilter(workflow="batch-test"), limit=None)}
    assert len(rows) == 6
    for line in lines:
        row = rows[line["ledger_id"]]
        assert row["source"] == "batch" and row["response"] == line["response"] and row["prompt"] == line["prompt"]
        assert line["prompt"] == f"Write a short line about topic {line['item']}:"
        assert row["seed"] == 100 + line["item"] * 2 + line["sample"]
    assert get_job(ledger.db, job.id).status == "done"


def test_pause_and_resume_continue_without_duplicates(runner: Runner, ledger: Ledger, tmp_path: Path) -> None:
    job = create_job(ledger.db, load_spec(write_job(tmp_path)))
    control = BatchControl()
    drive(run_batch(ledger, runner, job.id, control), lambda event: event.done == 2 and control.pause())
    assert get_job(ledger.db, job.id).status == "paused" and len(done_keys(ledger.db, job.id)) == 2
    finished = drive(run_batch(ledger, runner, job.id))
    assert finished.status == "done" and finished.done == 6
    lines = output_lines(Path(job.output_path))
    assert len(lines) == 6 and len({line["ledger_id"] for line in lines}) == 6


def test_cancel_mid_generation_logs_it_and_resume_redoes_it(runner: Runner, ledger: Ledger, tmp_path: Path) -> None:
    job = create_job(ledger.db, load_spec(write_job(tmp_path, items=2, samples=1, max_tokens=80)))
    control = BatchControl()
    import threading

    timer = threading.Timer(0.4, control.cancel.cancel)
    timer.start()
    cancelled = drive(run_batch(ledger, runner, job.id, control))
    timer.cancel()
    assert cancelled.status == "cancelled"
    assert list_generations(ledger.db, LogFilter(workflow="batch-test", status="cancelled"))
    finished = drive(run_batch(ledger, runner, job.id))
    assert finished.status == "done" and finished.done == 2
    assert len(output_lines(Path(job.output_path))) == 2
