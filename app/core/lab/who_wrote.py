"""The lab's "Who wrote this?" step, for educators: two teachers answer the same inputs, the
screener's style features learn each teacher's style, and it guesses the author of held-out
answers. The curve shows held-out accuracy against the number of training answers per teacher.

Teachers are the two bundled models by default (Gemma 3 270M base as a completion, SmolLM2-135M
Instruct through its chat template), asked to explain their answer to every input of the lab's
tasks (logged under the workflows lab:who-wrote:<teacher>); or any two ledger workflows, e.g. two
batch runs of the same inputs on two models (`--workflows A B`).

The held-out answers are fixed first (HELDOUT_SHARE of each teacher's, seeded); each point of the
curve trains a fresh logistic regression on the first n training answers of each teacher, in a
seeded order, so larger points see strictly more data.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlite_utils import Database

from app.core.cancel import NEVER, CancelToken
from app.core.lab.tasks import LabError, TaskSet
from app.core.progress import Progress
from app.core.screen.style_features import StyleFeaturizer

HELDOUT_SHARE = 0.3
CURVE_SIZES = (4, 8, 16, 32, 64, 128, 256)
MIN_PER_TEACHER = 12
WORKFLOW_PREFIX = "lab:who-wrote:"
QUESTION = "{instruction}\n\n{input_name}: {text}\n\nAnswer in one or two sentences and say why."
GUESSES_SHOWN = 6


@dataclass
class CurvePoint:
    """Held-out accuracy after training on `per_teacher` answers of each teacher."""

    per_teacher: int
    accuracy: float


@dataclass
class WhoWroteResult:
    """The curve, and a few held-out answers with the true author and the guess."""

    teachers: list[str]
    heldout: int
    curve: list[CurvePoint]
    guesses: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"teachers": self.teachers, "heldout": self.heldout,
                "curve": [{"per_teacher": p.per_teacher, "accuracy": round(p.accuracy, 4)} for p in self.curve],
                "guesses": self.guesses}


def teacher_texts(db: Database, workflow: str) -> list[str]:
    """The successful responses of one ledger workflow, oldest first."""
    rows = db.execute("SELECT response FROM generations WHERE workflow = ? AND status = 'ok' AND "
                      "trim(coalesce(response, '')) != '' ORDER BY id", [workflow]).fetchall()
    return [r[0] for r in rows]


def questions(tasks: TaskSet, limit: int) -> list[str]:
    """The lab's inputs as open questions (the same for both teachers), at most `limit`."""
    out = [QUESTION.format(instruction=task.instruction, input_name=task.input_name, text=item)
           for task in tasks.tasks.values() for item in task.items]
    return out[:limit]


def ask_teachers(asks: Sequence[tuple[str, Callable[[str, int], object]]], prompts: Sequence[str],
                 cancel: CancelToken = NEVER) -> Generator[Progress, None, bool]:
    """Have each teacher answer every prompt (`ask(prompt, seed)` logs one generation); yields
    Progress per answer; returns False if cancelled."""
    total = len(asks) * len(prompts)
    done = 0
    for name, ask in asks:
        for i, prompt in enumerate(prompts):
            if cancel.cancelled:
                return False
            ask(prompt, i)
            done += 1
            yield Progress("teachers", done, total, f"{name}: {i + 1}/{len(prompts)}")
    return True


def who_wrote(texts: dict[str, list[str]], seed: int = 0, sizes: Sequence[int] = CURVE_SIZES,
              cancel: CancelToken = NEVER) -> Generator[Progress, None, WhoWroteResult | None]:
    """Learn two teachers' styles from their answers and measure the held-out accuracy curve."""
    from sklearn.linear_model import LogisticRegression

    teachers = sorted(texts)
    if len(teachers) != 2:
        raise LabError(f"Who wrote this? needs exactly two teachers, got {len(teachers)}")
    short = {t: len(texts[t]) for t in teachers if len(texts[t]) < MIN_PER_TEACHER}
    if short:
        raise LabError("each teacher needs at least " f"{MIN_PER_TEACHER} answers; too few: "
                       + ", ".join(f"{t} ({n})" for t, n in short.items()))
    rng = np.random.default_rng(seed)
    train: dict[str, list[str]] = {}
    held_texts, held_labels = [], []
    for j, teacher in enumerate(teachers):
        order = rng.permutation(len(texts[teacher]))
        cut = max(2, int(round(len(order) * HELDOUT_SHARE)))
        held_texts += [texts[teacher][i] for i in order[:cut]]
        held_labels += [j] * cut
        train[teacher] = [texts[teacher][i] for i in order[cut:]]
    featurizer = StyleFeaturizer()
    held_x = featurizer.transform(held_texts)
    held_y = np.array(held_labels)
    most = min(len(train[t]) for t in teachers)
    points = sorted({n for n in sizes if n <= most} | {most})
    curve: list[CurvePoint] = []
    guesses: np.ndarray = np.zeros(0)
    for step, n in enumerate(points):
        if cancel.cancelled:
            return None
        x = featurizer.transform([text for t in teachers for text in train[t][:n]])
        y = np.array([j for j, _ in enumerate(teachers) for _ in range(n)])
        classifier = LogisticRegression(C=4.0, max_iter=2000).fit(x, y)
        guesses = classifier.predict(held_x)
        curve.append(CurvePoint(n, float((guesses == held_y).mean())))
        yield Progress("who-wrote", step + 1, len(points), f"{n} answers each: {curve[-1].accuracy * 100:.0f}%")
    shown = [{"answer": " ".join(held_texts[i].split())[:200], "author": teachers[held_y[i]],
              "guess": teachers[int(guesses[i])]} for i in range(0, len(held_texts), max(1, len(held_texts) // GUESSES_SHOWN))]
    return WhoWroteResult(teachers, len(held_texts), curve, shown[:GUESSES_SHOWN])
