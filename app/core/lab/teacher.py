"""Step 1, the teacher: the loaded local model labels the lab's inputs in one collection style.

Every call goes through the normal logged generation path (generate_logged) into the ledger, under
the workflow lab:<style>, with the lab run, task and item in the row's meta. The generator yields
TeacherProgress after each call and returns a TeacherResult; on cancel it stops (the generation
in progress is logged as cancelled) and returns None.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field

from app.core.cancel import NEVER, CancelToken
from app.core.generation import LogContext, LoggedGeneration, run_to_end
from app.core.lab.styles import build_request, check_style, parse_label, soft_labels, workflow_for
from app.core.lab.tasks import LabError, LabItem, TaskSet
from app.core.models.runner import Runner
from app.core.models.sampling import GenerationRequest
from app.core.progress import Progress
from app.core.store import Ledger

Generate = Callable[[GenerationRequest, LogContext, CancelToken], "LoggedGeneration | None"]
"""Runs one request through generate_logged on the model's owner thread and returns its row
(None when it was cancelled before it started)."""


def direct_generate(runner: Runner, ledger: Ledger) -> Generate:
    """A Generate for callers that own the runner on their own thread (the CLI, tests)."""

    def generate(request: GenerationRequest, context: LogContext, cancel: CancelToken) -> LoggedGeneration | None:
        return run_to_end(runner, ledger, request, context, cancel)

    return generate


@dataclass(frozen=True)
class TeacherAnswer:
    """The teacher's answer to one input and what it cost."""

    item: LabItem
    label: str | None
    soft: tuple[float, ...] | None
    text: str
    generation_id: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, kw_only=True)
class TeacherProgress(Progress):
    """Yielded after each teacher call (stage 'teacher'), with its answer."""

    answer: TeacherAnswer


@dataclass
class TeacherResult:
    """Everything the teacher answered in one run of step 1."""

    run_id: str
    style: str
    seed: int
    samples: int
    workflow: str
    answers: list[TeacherAnswer] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def has_soft(self) -> bool:
        """Whether the answers carry soft labels (the logprobs style)."""
        return any(answer.soft is not None for answer in self.answers)

    def for_task(self, task: str, held_out: bool) -> list[TeacherAnswer]:
        """The answers for one task's training samples (in order) or its held-out items."""
        return [a for a in self.answers if a.item.task == task and a.item.held_out == held_out]

    @property
    def calls(self) -> int:
        """Teacher calls made."""
        return len(self.answers)

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens of all calls."""
        return sum(answer.tokens for answer in self.answers)


def run_teacher(generate: Generate, tasks: TaskSet, style: str, samples: int, seed: int, run_id: str,
                cancel: CancelToken = NEVER) -> Generator[TeacherProgress, None, TeacherResult | None]:
    """Ask the teacher for every training sample and held-out input; yields TeacherProgress per call,
    returns the TeacherResult (None when cancelled).

    Runs on whichever thread may call `generate` (it blocks until each generation is logged).
    Raises LabError when a generation fails (the failure is logged in the ledger first).
    """
    check_style(style)
    train, held = tasks.split(samples, seed)
    ordered: list[LabItem] = []
    for task_id in tasks.tasks:  # one task after the other: its prompts share the few-shot prefix
        ordered += [item for item in (*train, *held) if item.task == task_id]
    result = TeacherResult(run_id, style, seed, samples, workflow_for(style))
    started = time.perf_counter()
    numbers: dict[str, int] = {}
    for done, item in enumerate(ordered, 1):
        if cancel.cancelled:
            return None
        task = tasks.tasks[item.task]
        number = numbers[item.task] = numbers.get(item.task, 0) + 1
        request = build_request(task, item.text, style, seed * 1009 + done, number)
        context = LogContext("lab", workflow=result.workflow, meta={"lab": {
            "run": run_id, "style": style, "task": item.task, "item": item.index, "held_out": item.held_out,
            "seed": seed, "samples": samples}})
        final = generate(request, context, cancel)
        if final is None or final.result.status == "cancelled" or cancel.cancelled:
            return None
        outcome = final.result
        if outcome.status != "ok":
            raise LabError(f"the teacher's generation {final.generation_id} failed: {outcome.error}")
        soft = soft_labels(task, outcome.logprobs) if request.params.logprobs is not None else None
        label = parse_label(task, style, outcome.text)
        if label is None and soft is not None:
            label = task.labels[max(range(len(soft)), key=soft.__getitem__)]
        answer = TeacherAnswer(item, label, soft, outcome.text, final.generation_id, outcome.prompt_tokens,
                               outcome.completion_tokens, outcome.duration_ms / 1000)
        result.answers.append(answer)
        yield TeacherProgress("teacher", done, len(ordered), f"{item.task}: {item.text[:60]} -> "
                              f"{label or '(no label)'}", answer=answer)
    result.seconds = time.perf_counter() - started
    return result


def answered_share(answers: Sequence[TeacherAnswer]) -> float:
    """The share of answers that named one of the task's labels."""
    return sum(a.label is not None for a in answers) / len(answers) if answers else 0.0
