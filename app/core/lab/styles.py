"""The teacher's collection styles: how each asks the teacher for a label, and how its answer is read.

The default model is a base model, so every style is a completion-style few-shot prompt: worked
examples, then the new input, then the start of the answer. All prompts of one task share their
few-shot prefix, so llama.cpp reuses the evaluated prefix and each call evaluates only the new
input. Sampling is greedy (temperature 0) with a logged seed derived from the lab's seed, so a run
is reproducible.

- plain: the label alone.
- reasoning: step-by-step reasoning requested before the label (chain-of-thought collection).
- judge: the teacher as a grader with a rubric, answering [[label]] (autograding).
- sweep: one rigid template with numbered, quoted slots, the same for every task (a templated sweep).
- logprobs: the label's first token with the top-20 log-probabilities (soft labels).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from app.core.lab.tasks import LabError, Task
from app.core.models.sampling import GenerationRequest, SamplingParams

STYLES = ("plain", "reasoning", "judge", "sweep", "logprobs")
DEFAULT_STYLE = "logprobs"
STYLE_TITLES = {
    "plain": "Plain answers",
    "reasoning": "Step-by-step reasoning requested",
    "judge": "Judge / grader prompts",
    "sweep": "Templated sweep",
    "logprobs": "Answers with logprobs (soft labels)",
}
TOP_LOGPROBS = 20
REASONING_TOKENS = 48
LABEL_TOKENS = 4
_WORD = re.compile(r"[a-z]+")


def workflow_for(style: str) -> str:
    """The ledger workflow of a style's teacher calls: lab:<style>."""
    return f"lab:{style}"


def check_style(style: str) -> str:
    """`style`, or LabError naming the styles there are."""
    if style not in STYLES:
        raise LabError(f"unknown lab style {style!r}; choose one of: {', '.join(STYLES)}")
    return style


def _prefix(task: Task, style: str) -> str:
    labels = ", ".join(task.labels)
    if style == "reasoning":
        lines = [f"{task.instruction} Think step by step and explain your reasoning before the answer.", ""]
        for ex in task.examples:
            lines += [f"{task.input_name}: {ex.text}", f"Reasoning: Let's think step by step. {ex.why}",
                      f"{task.answer_name}: {ex.label}", ""]
        return "\n".join(lines)
    if style == "judge":
        lines = [f"You are a strict grader. Grade each {task.input_name.lower()} against the rubric.",
                 f"Rubric: {task.instruction} Give the verdict as [[label]], where label is one of: {labels}.", ""]
        for ex in task.examples:
            lines += [f"{task.input_name}: {ex.text}", f"Verdict: [[{ex.label}]]", ""]
        return "\n".join(lines)
    if style == "sweep":
        lines = [f"### Capability sweep | skill: {task.name.lower()} | labels: {' / '.join(task.labels)}",
                 f"Instruction: {task.instruction}", ""]
        for number, ex in enumerate(task.examples, 1):
            lines += [f"Input #{number}: \"{ex.text}\"", f"Output #{number}: {ex.label}", ""]
        return "\n".join(lines)
    lines = [task.instruction, ""]
    for ex in task.examples:
        lines += [f"{task.input_name}: {ex.text}", f"{task.answer_name}: {ex.label}", ""]
    return "\n".join(lines)


def build_request(task: Task, text: str, style: str, seed: int, number: int) -> GenerationRequest:
    """The completion request the teacher answers for `text` in `style` (number: the item's place)."""
    prompt = _prefix(task, check_style(style))
    stop = ["\n"]
    max_tokens, logprobs = LABEL_TOKENS, None
    if style == "reasoning":
        prompt += f"{task.input_name}: {text}\nReasoning: Let's think step by step."
        stop, max_tokens = ["\n\n", f"\n{task.input_name}:"], REASONING_TOKENS
    elif style == "judge":
        prompt += f"{task.input_name}: {text}\nVerdict: [["
        stop = ["]]", "\n"]
    elif style == "sweep":
        slot = len(task.examples) + number + 1
        prompt += f"Input #{slot}: \"{text}\"\nOutput #{slot}:"
    else:
        prompt += f"{task.input_name}: {text}\n{task.answer_name}:"
        if style == "logprobs":
            max_tokens, logprobs = 1, TOP_LOGPROBS
    params = SamplingParams(temperature=0.0, top_k=1, max_tokens=max_tokens, seed=seed % 2**32, stop=stop,
                            logprobs=logprobs)
    return GenerationRequest("completion", prompt=prompt, params=params)


def match_label(labels: Sequence[str], fragment: str) -> str | None:
    """The label a word or token stands for: equal to it, or a prefix of it of 3+ letters; None when
    no label or more than one matches."""
    word = fragment.strip().lower()
    if not word:
        return None
    found = [label for label in labels if label == word or (len(word) >= 3 and label.startswith(word))]
    return found[0] if len(found) == 1 else None


def parse_label(task: Task, style: str, text: str) -> str | None:
    """The label in the teacher's answer, or None when it gave none of the task's labels."""
    if style == "reasoning":
        marker = f"{task.answer_name.lower()}:"
        lowered = text.lower()
        if marker not in lowered:
            return None
        text = lowered.rsplit(marker, 1)[1]
    words = _WORD.findall(text.lower())
    return match_label(task.labels, words[0]) if words else None


def soft_labels(task: Task, logprobs: Mapping[str, Any] | None) -> tuple[float, ...] | None:
    """The teacher's probability for each label, read from the top log-probabilities of the first
    answer token (tokens standing for the same label are summed; a label outside the top list gets
    less than the smallest listed probability); None when no label is among them."""
    tops = (logprobs or {}).get("top_logprobs") or []
    if not tops or not tops[0]:
        return None
    first: dict[str, float] = tops[0]
    mass = {label: 0.0 for label in task.labels}
    for token, logprob in first.items():
        label = match_label(task.labels, token)
        if label is not None:
            mass[label] += math.exp(logprob)
    if not any(mass.values()):
        return None
    floor = math.exp(min(first.values())) / 2
    values = [mass[label] or floor for label in task.labels]
    total = sum(values)
    return tuple(value / total for value in values)
