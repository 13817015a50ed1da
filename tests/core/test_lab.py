"""The distillation lab on the real default model: teacher calls logged under lab:<style>, a student
really trained on MiniLM embeddings that beats the majority baseline on held-out inputs, soft
labels read from real log-probabilities, the audit of the lab workflow and the lesson report."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from app.core.audit.embeddings import Encoder
from app.core.audit.patterns import load_library
from app.core.generation import LogContext, run_to_end
from app.core.lab.lesson import agreement_chart, write_lesson
from app.core.lab.run import run_lab
from app.core.lab.state import LabConfig, LabState
from app.core.lab.student import run_student, sample_counts
from app.core.lab.styles import STYLES, build_request, match_label, parse_label, soft_labels
from app.core.lab.tasks import HELD_OUT_PER_TASK, LabError, load_tasks
from app.core.lab.teacher import direct_generate, run_teacher
from app.core.models.registry import ModelRecord
from app.core.models.runner import LoadOptions, Runner
from app.core.progress import drive
from app.core.store import Ledger

SAMPLES = 16


@pytest.fixture(scope="module")
def encoder(embedding_store: Path) -> Encoder:
    made = Encoder(export_dir=embedding_store)
    made.model()
    return made


def test_reduced_lab_end_to_end(runner: Runner, ledger: Ledger, encoder: Encoder, tmp_path: Path) -> None:
    tasks = load_tasks()
    steps = set()
    state: LabState | None = drive(run_lab(direct_generate(runner, ledger), ledger, encoder, load_library(), tasks,
                                           LabConfig("plain", SAMPLES, 7)), lambda item: steps.add(item.stage))
    assert state is not None and steps == {"teacher", "student", "compare"}
    assert state.teacher is not None and state.student is not None and state.compare is not None

    # every teacher call is one ledger row under the lab workflow, with the run in its meta
    expected_calls = len(tasks.tasks) * (SAMPLES + HELD_OUT_PER_TASK)
    assert state.teacher.calls == expected_calls
    rows = ledger.db.execute("SELECT source, status, meta, logprobs_requested FROM generations "
                             "WHERE workflow = 'lab:plain'").fetchall()
    assert len(rows) == expected_calls
    assert all(r[0] == "lab" and r[1] == "ok" and json.loads(r[2])["lab"]["run"] == state.run_id for r in rows)
    assert sum(a.label is not None for a in state.teacher.answers) >= 0.9 * expected_calls

    # the student really trained: measured on held-out inputs, beating the majority answer
    points = state.student.points
    assert [p.samples for p in points] == sample_counts(SAMPLES) == [2, 4, 8, 16]
    assert state.student.held_out == len(tasks.tasks) * HELD_OUT_PER_TASK
    final = state.student.final
    assert final.hard_agreement >= final.baseline_agreement + 0.1, final.as_dict()
    assert final.soft_agreement is None  # plain answers carry no soft labels
    assert [p.teacher_calls for p in points] == [2 * n for n in sample_counts(SAMPLES)]
    assert all(a.tokens < b.tokens and a.seconds < b.seconds for a, b in zip(points, points[1:]))

    # the audit saw the lab workflow
    assert "lab:plain" in state.compare.levels()
    assert state.compare.workflows[0].name == "lab:plain"
    assert state.compare.workflows[0].generations == expected_calls

    lesson = write_lesson(state, tasks, tmp_path / "lesson" / "lesson.html")
    text = lesson.read_text(encoding="utf-8")
    assert "<svg" in text and "Frontier Model Forum" in text and "Self-Instruct" in text and "Orca" in text
    assert "lab:plain" in text and f"{final.hard_agreement:.0%}" in text
    ET.fromstring((tmp_path / "lesson" / "agreement.svg").read_text(encoding="utf-8"))
    assert json.loads(state.to_json())["curve"][-1]["samples"] == SAMPLES


def test_soft_labels_from_real_logprobs(default_model: ModelRecord, ledger: Ledger, encoder: Encoder) -> None:
    """The logprobs style asks for the top-20 log-probabilities of one token; the soft label is a
    distribution over the task's labels whose argmax is the teacher's answer; a student trained on
    soft labels ends closer to the teacher's probabilities than one trained on hard labels."""
    runner = Runner()
    runner.load(default_model.sha256, default_model.info, LoadOptions(n_ctx=1024, n_threads=2, logits_all=True))
    try:
        task = load_tasks().tasks["sentiment"]
        for number, text in enumerate(("The cake was wonderful and the staff were kind.",
                                       "The screen cracked on the first day."), 1):
            request = build_request(task, text, "logprobs", 11, number)
            assert request.params.max_tokens == 1 and request.params.logprobs == 20
            final = run_to_end(runner, ledger, request, LogContext("lab", workflow="lab:logprobs"))
            soft = soft_labels(task, final.result.logprobs)
            assert soft is not None and math.isclose(sum(soft), 1.0)
            label = parse_label(task, "logprobs", final.result.text)
            assert label == task.labels[soft.index(max(soft))]
        assert task.labels == ("positive", "negative")
        row = ledger.db.execute("SELECT logprobs_requested, logprobs FROM generations ORDER BY id DESC").fetchone()
        assert row[0] == 1 and json.loads(row[1])["top_logprobs"]

        tasks = load_tasks()
        teacher = drive(run_teacher(direct_generate(runner, ledger), tasks, "logprobs", 2, 7, "soft-test"))
        assert teacher.has_soft and all(a.soft is not None for a in teacher.answers)
        student = drive(run_student(teacher, tasks, encoder))
        point = student.final
        assert point.soft_agreement is not None and point.hard_kl is not None and point.soft_kl is not None
        assert point.soft_kl < point.hard_kl, point.as_dict()
    finally:
        runner.unload()


def test_styles_build_prompts_that_share_a_prefix_and_parse_answers() -> None:
    tasks = load_tasks()
    task = tasks.tasks["topic"]
    for style in STYLES:
        first = build_request(task, "Goalkeeper saves a penalty.", style, 1, 1).prompt or ""
        second = build_request(task, "Rain all day tomorrow.", style, 2, 2).prompt or ""
        assert first.rsplit("\n", 2)[0] == second.rsplit("\n", 2)[0]  # all but the input and the answer cue
    assert "step by step" in (build_request(task, "x", "reasoning", 1, 1).prompt or "")
    assert parse_label(task, "plain", " sports\n") == "sports"
    assert parse_label(task, "judge", "technology") == "technology"
    assert parse_label(task, "reasoning", " A match is sport.\nTopic: sports") == "sports"
    assert parse_label(task, "reasoning", " I am not sure.") is None
    assert parse_label(task, "plain", " maybe") is None
    assert match_label(task.labels, " tech") == "technology" and match_label(task.labels, "s") is None
    assert soft_labels(task, {"top_logprobs": [{" politics": -0.1}]}) is None


def test_bad_settings_are_named() -> None:
    tasks = load_tasks()
    with pytest.raises(LabError, match="unknown lab style 'loud'"):
        LabConfig("loud").check(tasks)
    with pytest.raises(LabError, match="--samples must be at most"):
        LabConfig("plain", tasks.max_samples() + 1).check(tasks)
    with pytest.raises(LabError, match="at least 2"):
        LabConfig("plain", 1).check(tasks)
    train, held = tasks.split(4, 3)
    again, _ = tasks.split(4, 3)
    assert train == again and not {(i.task, i.index) for i in train} & {(i.task, i.index) for i in held}


def test_agreement_chart_is_valid_svg() -> None:
    from app.core.lab.student import CurvePoint

    points = [CurvePoint(n, 2 * n, 100 * n, 0.5 * n, 0.5 + n / 40, 0.55 + n / 40, 0.5, 1.0, 0.5) for n in (2, 4, 8)]
    root = ET.fromstring(agreement_chart(points))
    assert root.tag.endswith("svg") and len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 3
