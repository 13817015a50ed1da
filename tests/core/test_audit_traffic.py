"""The audit on harder traffic (generated in tests/core/audit_traffic.py): a harvest diluted in
everyday use is reported as its group, a sweep over several wrappers is one sweep and raises
nothing else, templated batches of ordinary work stay low with no false reason, and every reason
is traced to a computed number or to matched rows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.core.audit.embeddings import Encoder
from app.core.audit.levels import LEVELS, is_evidence, judge
from app.core.audit.patterns import load_library
from app.core.audit.run import AuditResult, WorkflowAudit, run_audit
from app.core.audit.signals import WorkflowSignals
from app.core.progress import drive
from app.core.store import Ledger
from tests.core import audit_traffic as traffic

BATCHES = list(traffic.BATCH_TEMPLATES)


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AuditResult, Ledger]]:
    ledger = Ledger.open(Path(tmp_path_factory.mktemp("traffic")) / "ledger.db")
    rows = traffic.diluted_harvest(start=0) + traffic.multi_template_sweep(start=1000)
    for i, kind in enumerate(BATCHES):
        rows += traffic.templated_batch(kind, start=2000 + 100 * i)
    rows += traffic.everyday_chat(start=3000)
    ledger.append_many(rows)
    result = drive(run_audit(ledger.db, Encoder(), load_library()))
    assert result is not None
    yield result, ledger
    ledger.close()


def workflow(result: AuditResult, name: str) -> WorkflowAudit:
    return next(w for w in result.workflows if w.name == name)


def prompts_of(ledger: Ledger, ids: list[int]) -> list[str]:
    marks = ",".join("?" for _ in ids)
    return [row[0] for row in ledger.db.execute(f"SELECT prompt FROM generations WHERE id IN ({marks})", ids)]


def test_a_diluted_harvest_is_reported_as_its_group(audited: tuple[AuditResult, Ledger]) -> None:
    result, ledger = audited
    default = workflow(result, "default")
    groups = [g for g in default.substreams if g.pattern == "cot_exfiltration"]
    assert groups, [g.sentence for g in default.substreams]
    group = groups[0]
    assert re.fullmatch(r"\d+ of 71 requests in \u2018default\u2019, [a-z ]+, sent between \d\d:\d\d and \d\d:\d\d "
                        r"on 2026-03-09, resemble chain-of-thought exfiltration: medium", group.sentence), group.sentence
    assert group.size == len(group.generation_ids) < default.generations
    harvest = [p for p in prompts_of(ledger, group.generation_ids) if "reasoning" in p or "chain of thought" in p]
    assert len(harvest) >= 0.7 * group.size and len(harvest) >= 15  # the group is the harvest, mostly
    assert all("reasoning" in p or "chain of thought" in p for p in prompts_of(ledger, group.examples))
    verdict = next(p for p in default.patterns if p.id == "cot_exfiltration")
    assert verdict.level == "medium" and verdict.reasons[0] == group.sentence + "."
    assert all(p.level in ("none", "low") for p in default.patterns if p.id != "cot_exfiltration")


def test_a_sweep_over_several_wrappers_is_one_sweep_and_raises_nothing_else(
        audited: tuple[AuditResult, Ledger]) -> None:
    sweep = workflow(audited[0], "sweep")
    levels = {p.id: p.level for p in sweep.patterns}
    assert levels["templated_sweep"] in ("medium", "high"), levels
    assert sweep.signals.grid_cells >= 24 and sweep.signals.grid_coverage >= 0.5
    assert all(level in ("none", "low") for pid, level in levels.items() if pid != "templated_sweep"), levels
    verdict = next(p for p in sweep.patterns if p.id == "templated_sweep")
    assert "slot_grid" in verdict.workflow_cues
    assert any(reason.startswith("The grid: ") for reason in verdict.reasons)


@pytest.mark.parametrize("kind", BATCHES)
def test_templated_batches_of_ordinary_work_stay_low_with_no_false_reason(
        audited: tuple[AuditResult, Ledger], kind: str) -> None:
    batch = workflow(audited[0], f"batch:{kind}")
    for verdict in batch.patterns:
        assert verdict.level in ("none", "low"), (verdict.id, verdict.level, verdict.reasons)
        # the only workflow-level statement any pattern may make: the template is shared
        allowed = {"template_reuse"} if verdict.id == "templated_sweep" else set()
        assert set(verdict.workflow_cues) <= allowed, (verdict.id, verdict.workflow_cues)
        for words in ("judge template", "agent scaffold", "shared framing", "wrapper reused", "grid:"):
            assert not any(words in reason.lower() for reason in verdict.reasons), (verdict.id, words)
    assert not batch.substreams


def test_a_template_alone_is_not_a_sweep(audited: tuple[AuditResult, Ledger]) -> None:
    batch = workflow(audited[0], "batch:translation")
    verdict = next(p for p in batch.patterns if p.id == "templated_sweep")
    assert verdict.level == "low" and verdict.workflow_cues == ["template_reuse"]
    assert batch.signals.grid_cells == 0
    assert any("fills no grid" in reason for reason in verdict.reasons)
    assert verdict.lookalikes and any("own" in item["name"] for item in verdict.lookalikes)


def test_ordinary_diverse_chat_is_none_on_persona_and_low_needs_evidence(audited: tuple[AuditResult, Ledger]) -> None:
    result, _ = audited
    chat = workflow(result, "chat")
    assert chat.signals.semantic_diversity is not None and chat.signals.semantic_diversity > 0.8
    assert next(p for p in chat.patterns if p.id == "persona_cloning").level == "none"
    for audited_workflow in result.workflows:
        for verdict in audited_workflow.patterns:
            if verdict.level != "none":
                assert verdict.hits or verdict.workflow_cues or any(
                    g.pattern == verdict.id for g in audited_workflow.substreams), (audited_workflow.name, verdict.id)


def _traced(reason: str, verdict_hits: int, generations: int, examples: list[int], signals: dict[str, object],
            group_sentences: set[str]) -> bool:
    """Whether a reason's numbers are the computed ones (or it states no number about the traffic)."""
    if reason in group_sentences or reason.startswith("In that group: "):
        return True
    found = re.match(r"(\d+) of (\d+) prompts \((\d+)%\) resemble", reason)
    if found:
        return int(found[1]) == verdict_hits and int(found[2]) == generations
    found = re.match(r"The closest match \(generation (\d+)\)", reason)
    if found:
        return int(found[1]) in examples
    found = re.match(r"Across the workflow: .* \((\w+) = ([\d.]+|None)\)\.$", reason)
    if found:
        value = signals.get(found[1])
        return found[2] == (f"{value:.2f}" if isinstance(value, float) else str(value))
    found = re.match(r"The grid: (\d+) of (\d+) cells", reason)
    if found:
        return int(found[1]) == signals["grid_cells"] and int(found[2]) == signals["grid_size"]
    return not re.search(r"\d", reason.replace("(grid_cells = 0)", ""))


def test_every_reason_is_traced_to_a_computed_number_or_matched_rows(audited: tuple[AuditResult, Ledger]) -> None:
    for audited_workflow in audited[0].workflows:
        sentences = {g.sentence + "." for g in audited_workflow.substreams}
        signals = audited_workflow.signals.as_dict()
        for verdict in audited_workflow.patterns:
            for reason in verdict.reasons:
                assert _traced(reason, verdict.hits, audited_workflow.generations, verdict.examples, signals,
                               sentences), (audited_workflow.name, verdict.id, reason)


def _signals(volume: int, **values: object) -> WorkflowSignals:
    base: dict[str, object] = dict(volume=volume, rate_per_hour=60, active_span_hours=2.0, first=None, last=None,
                                   template_reuse_share=0.0, semantic_diversity=0.6, reasoning_share=0.0,
                                   grading_share=0.0, logprob_share=0.0, max_tokens_1_share=0.0, tool_share=0.0,
                                   refusal_share=0.0, tool_requests=0, tool_call_answers=0)
    base.update(values)
    return WorkflowSignals(**base)  # type: ignore[arg-type]


def _level(pid: str, signals: WorkflowSignals) -> tuple[str, list[str]]:
    pattern = load_library().patterns[pid]
    verdict = judge(pattern, np.zeros(signals.volume), list(range(signals.volume)), signals, {})
    return verdict.level, verdict.workflow_cues


def test_a_judge_template_needs_verdicts_and_an_agent_scaffold_needs_tools() -> None:
    reused = _signals(200, template_reuse_share=1.0, semantic_diversity=0.9)
    assert _level("autograding", reused) == ("none", [])
    assert _level("agentic_harvest", reused) == ("none", [])
    assert _level("persona_cloning", reused) == ("none", [])
    grading = _signals(200, template_reuse_share=1.0, grading_share=0.9)
    level, cues = _level("autograding", grading)
    assert level == "medium" and set(cues) == {"mostly_grading", "one_judge_template"}
    tools = _signals(200, template_reuse_share=0.9, tool_share=0.8, tool_requests=160)
    level, cues = _level("agentic_harvest", tools)
    assert level == "medium" and "one_scaffold" in cues


def test_the_sweep_level_rises_with_volume_and_grid_breadth() -> None:
    batch = _signals(150, template_reuse_share=1.0)
    scripted = _signals(6000, template_reuse_share=1.0, rate_per_hour=900)
    grid = _signals(150, template_reuse_share=1.0, grid_slots=2, grid_cells=40, grid_size=48,
                    grid_coverage=0.83, template_family_share=0.9, grid_values=[["a"], ["b"]])
    broad = _signals(3000, template_reuse_share=1.0, grid_slots=3, grid_cells=300, grid_size=320,
                     grid_coverage=0.94, template_family_share=0.95, grid_values=[["a"], ["b"]])
    levels = [_level("templated_sweep", s)[0] for s in (batch, scripted, grid, broad)]
    assert levels[0] == "low" and all(LEVELS.index(level) >= LEVELS.index("medium") for level in levels[1:])
    pattern = load_library().patterns["templated_sweep"]
    scores = [judge(pattern, np.zeros(s.volume), list(range(s.volume)), s, {}).score for s in (batch, grid, broad)]
    assert scores[0] < scores[1] < scores[2]


def test_shape_cues_are_not_evidence_and_share_cues_are() -> None:
    library = load_library()
    kinds = {(pid, cue.id): is_evidence(cue, p) for pid, p in library.patterns.items() for cue in p.workflow_cues}
    assert kinds[("autograding", "mostly_grading")] and not kinds[("autograding", "one_judge_template")]
    assert not kinds[("persona_cloning", "broad_topics")] and not kinds[("persona_cloning", "little_reasoning")]
    assert kinds[("templated_sweep", "slot_grid")] and kinds[("templated_sweep", "template_reuse")]
    # grading prompts are autograding's evidence, not reasoning reconstruction's
    assert kinds[("cot_critique", "reasoning_heavy")] and not kinds[("cot_critique", "grading_mixed_in")]


def test_template_induction_finds_the_grid_of_a_sweep_and_none_in_free_text() -> None:
    from app.core.audit.templates import induce_grid

    sweep = induce_grid([row["prompt"] for row in traffic.multi_template_sweep()])
    assert sweep.slots >= 2 and sweep.covered == sweep.cells == len(traffic.LANGUAGES) * len(traffic.TASKS)
    assert {"python", "rust"} & {v for values in sweep.values for v in values}
    # one task over one's own material, even into several languages: one categorical slot, no grid
    material = [f"Translate into {language}: {text}" for text in traffic.MATERIAL
                for language in ("German", "French", "Spanish", "Italian")]
    assert induce_grid(material).slots == 0
    for kind in traffic.BATCH_TEMPLATES:
        assert induce_grid([row["prompt"] for row in traffic.templated_batch(kind)]).slots == 0
    # free text whose words happen to be disjoint is no grid: everyday questions
    assert induce_grid(traffic.EVERYDAY * 2).slots == 0
