"""The lab's task set (resources/lab/tasks.yaml): short classification tasks with fixed labels.

Each task's inputs are split once, reproducibly with the lab's seed, into a training pool (the
teacher's training samples are taken from it, in a seeded order) and a held-out set on which the
student's agreement with the teacher is measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from app.core.errors import StillroomError

TASKS_FILE = Path(__file__).resolve().parents[3] / "resources" / "lab" / "tasks.yaml"
HELD_OUT_PER_TASK = 16


class LabError(StillroomError):
    """The lab cannot run as asked (bad task file, too many samples, unknown style)."""


@dataclass(frozen=True)
class Example:
    """A worked example shown to the teacher in its few-shot prompt."""

    text: str
    label: str
    why: str


@dataclass(frozen=True)
class Task:
    """One classification task: the labels, the prompt wording, worked examples and inputs."""

    id: str
    name: str
    instruction: str
    input_name: str
    answer_name: str
    labels: tuple[str, ...]
    examples: tuple[Example, ...]
    items: tuple[str, ...]


@dataclass(frozen=True)
class LabItem:
    """One input to label: its task, its text, and whether it is held out from training."""

    task: str
    index: int
    text: str
    held_out: bool


@dataclass(frozen=True)
class TaskSet:
    """All tasks, by id, in file order."""

    version: int
    tasks: dict[str, Task]

    def split(self, samples: int, seed: int) -> tuple[list[LabItem], list[LabItem]]:
        """The first `samples` training items of every task (in a seeded order) and the held-out items.

        Raises LabError when a task's training pool is smaller than `samples`.
        """
        if samples < 2:
            raise LabError(f"--samples must be at least 2 (one per label is the least a student can learn from), "
                           f"got {samples}")
        train: list[LabItem] = []
        held: list[LabItem] = []
        for offset, task in enumerate(self.tasks.values()):
            order = np.random.default_rng([seed, offset]).permutation(len(task.items))
            held_idx, pool = order[:HELD_OUT_PER_TASK], order[HELD_OUT_PER_TASK:]
            if samples > len(pool):
                raise LabError(f"task {task.id!r} has {len(pool)} training inputs; --samples must be at most "
                               f"{len(pool)}, got {samples}")
            train += [LabItem(task.id, int(i), task.items[i], False) for i in pool[:samples]]
            held += [LabItem(task.id, int(i), task.items[i], True) for i in sorted(held_idx)]
        return train, held

    def max_samples(self) -> int:
        """The largest --samples every task can serve."""
        return min(len(task.items) for task in self.tasks.values()) - HELD_OUT_PER_TASK


def load_tasks(path: Path = TASKS_FILE) -> TaskSet:
    """Read and check the task file; raises LabError naming the problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"{path}: the lab's task file cannot be read ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), list) or not data["tasks"]:
        raise LabError(f"{path}: expected a mapping with a non-empty 'tasks' list")
    tasks: dict[str, Task] = {}
    for raw in data["tasks"]:
        try:
            task = Task(
                id=str(raw["id"]), name=str(raw["name"]), instruction=str(raw["instruction"]),
                input_name=str(raw["input_name"]), answer_name=str(raw["answer_name"]),
                labels=tuple(str(label) for label in raw["labels"]),
                examples=tuple(Example(str(e["text"]), str(e["label"]), str(e["why"])) for e in raw["examples"]),
                items=tuple(str(item) for item in raw["items"]),
            )
        except (KeyError, TypeError) as exc:
            raise LabError(f"{path}: task {raw.get('id', '?') if isinstance(raw, dict) else '?'} lacks "
                           f"a field or has the wrong type ({exc})") from exc
        bad = [e.label for e in task.examples if e.label not in task.labels]
        if len(task.labels) < 2 or bad:
            raise LabError(f"{path}: task {task.id!r} needs two or more labels and examples using them (bad: {bad})")
        if len(task.items) <= HELD_OUT_PER_TASK + 2:
            raise LabError(f"{path}: task {task.id!r} needs more than {HELD_OUT_PER_TASK + 2} inputs")
        tasks[task.id] = task
    return TaskSet(int(data.get("version", 1)), tasks)
