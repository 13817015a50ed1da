"""Step 2, the student: a softmax-regression classifier on MiniLM sentence embeddings of the inputs,
trained here (numpy, full-batch gradient descent from a seeded start) to give the teacher's answer.

Two students per task and sample count: one trained on the teacher's hard labels (its answer), one
on its soft labels (cross-entropy against the teacher's probability for every label, logprobs style
only). Each is measured on the held-out inputs: agreement with the teacher's answer, against the
majority-answer baseline (always say the answer the teacher gave most often in training).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field

import numpy as np

from app.core.audit.embeddings import Encoder
from app.core.cancel import NEVER, CancelToken
from app.core.lab.tasks import Task, TaskSet
from app.core.lab.teacher import TeacherAnswer, TeacherResult
from app.core.progress import Progress

STEPS = 400
LEARNING_RATE = 4.0
L2 = 1e-3
INIT_SCALE = 0.01
STAGE = "student"


def sample_counts(samples: int) -> list[int]:
    """The learning curve's points: 2, 4, 8, ... up to `samples` (which is always the last)."""
    counts, n = [], 2
    while n < samples:
        counts.append(n)
        n *= 2
    return counts + [samples]


@dataclass
class Student:
    """A trained softmax regression: probabilities = softmax((x - mean) @ weights + bias)."""

    mean: np.ndarray
    weights: np.ndarray
    bias: np.ndarray

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, one row per input vector."""
        return _softmax((x - self.mean) @ self.weights + self.bias)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def train_student(x: np.ndarray, targets: np.ndarray, seed: int, steps: int = STEPS) -> Student:
    """Fit softmax regression to `targets` (rows: one-hot hard labels or soft distributions) by
    full-batch gradient descent on the mean cross-entropy plus an L2 penalty."""
    rng = np.random.default_rng(seed)
    mean = x.mean(axis=0)
    centred = x - mean
    weights = rng.normal(0.0, INIT_SCALE, (x.shape[1], targets.shape[1]))
    bias = np.zeros(targets.shape[1])
    n = len(x)
    for _ in range(steps):
        error = _softmax(centred @ weights + bias) - targets
        weights -= LEARNING_RATE * (centred.T @ error / n + L2 * weights)
        bias -= LEARNING_RATE * error.mean(axis=0)
    return Student(mean, weights, bias)


@dataclass(frozen=True)
class CurvePoint:
    """One point of the learning curve: students trained on the first `samples` teacher answers of
    every task, measured on the held-out inputs, with the teacher's cost of those samples."""

    samples: int
    teacher_calls: int
    tokens: int
    seconds: float
    hard_agreement: float
    soft_agreement: float | None
    baseline_agreement: float
    hard_kl: float | None
    soft_kl: float | None
    per_task: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"samples": self.samples, "teacher_calls": self.teacher_calls, "tokens": self.tokens,
                "seconds": round(self.seconds, 3), "hard_agreement": round(self.hard_agreement, 4),
                "soft_agreement": None if self.soft_agreement is None else round(self.soft_agreement, 4),
                "baseline_agreement": round(self.baseline_agreement, 4),
                "hard_kl": None if self.hard_kl is None else round(self.hard_kl, 4),
                "soft_kl": None if self.soft_kl is None else round(self.soft_kl, 4), "per_task": self.per_task}


@dataclass
class StudentResult:
    """The learning curve and what the student step measured."""

    style: str
    seed: int
    held_out: int
    points: list[CurvePoint]
    held_out_cost: dict[str, float]
    embed_seconds: float
    train_seconds: float

    @property
    def final(self) -> CurvePoint:
        """The point with the most samples."""
        return self.points[-1]


def _targets(task: Task, answers: Sequence[TeacherAnswer], soft: bool) -> np.ndarray:
    k = len(task.labels)
    if soft:
        return np.array([a.soft for a in answers], dtype=np.float64).reshape(len(answers), k)
    rows = np.zeros((len(answers), k))
    for row, answer in enumerate(answers):
        rows[row, task.labels.index(answer.label)] = 1.0
    return rows


def _kl(teacher: np.ndarray, student: np.ndarray) -> float:
    eps = 1e-9
    return float(np.mean(np.sum(teacher * (np.log(teacher + eps) - np.log(student + eps)), axis=1)))


def run_student(teacher: TeacherResult, tasks: TaskSet, encoder: Encoder | Callable[[], Encoder],
                cancel: CancelToken = NEVER) -> Generator[Progress, None, StudentResult | None]:
    """Embed the inputs, train hard (and soft) students at every sample count, measure them on the
    held-out inputs; yields Progress (stage 'student', with a line to show) after the embeddings and
    each trained point, returns the StudentResult (None when cancelled).

    Runs on the caller's thread (CLI or a worker thread); the encoder loads on first use.
    """
    counts = sample_counts(teacher.samples)
    total = 1 + len(counts)
    yield Progress(STAGE, 0, total, "embedding the inputs")
    the_encoder = encoder() if callable(encoder) and not isinstance(encoder, Encoder) else encoder
    started = time.perf_counter()
    texts = [a.item.text for a in teacher.answers]
    vectors = the_encoder.encode(texts).astype(np.float64)
    by_answer = {id(a): vectors[i] for i, a in enumerate(teacher.answers)}
    embed_seconds = time.perf_counter() - started
    if cancel.cancelled:
        return None
    yield Progress(STAGE, 1, total, f"embedded {len(texts)} inputs in {embed_seconds:.1f} s")
    soft_available = teacher.has_soft
    started = time.perf_counter()
    points: list[CurvePoint] = []
    held_cost = {"calls": 0.0, "tokens": 0.0, "seconds": 0.0}
    for task_id in tasks.tasks:
        for a in teacher.for_task(task_id, True):
            held_cost["calls"] += 1
            held_cost["tokens"] += a.tokens
            held_cost["seconds"] += a.seconds
    for done, n in enumerate(counts, 2):
        if cancel.cancelled:
            return None
        matched = {"hard": 0, "soft": 0, "baseline": 0}
        kls: dict[str, list[float]] = {"hard": [], "soft": []}
        evaluated, calls, tokens, seconds = 0, 0, 0, 0.0
        per_task: dict[str, dict[str, float | None]] = {}
        for offset, (task_id, task) in enumerate(tasks.tasks.items()):
            used = teacher.for_task(task_id, False)[:n]
            calls += len(used)
            tokens += sum(a.tokens for a in used)
            seconds += sum(a.seconds for a in used)
            held = [a for a in teacher.for_task(task_id, True) if a.label is not None]
            labelled = [a for a in used if a.label is not None]
            if not held or not labelled:
                continue
            truth = np.array([task.labels.index(a.label) for a in held])
            x_held = np.array([by_answer[id(a)] for a in held])
            majority = Counter(a.label for a in labelled).most_common(1)[0][0]
            task_scores: dict[str, float | None] = {
                "baseline": float(np.mean(truth == task.labels.index(majority)))}
            modes = ["hard"] + (["soft"] if soft_available else [])
            for mode in modes:
                pool = [a for a in used if a.soft is not None] if mode == "soft" else labelled
                if not pool:
                    task_scores[mode] = None
                    continue
                student = train_student(np.array([by_answer[id(a)] for a in pool]),
                                        _targets(task, pool, mode == "soft"), seed=teacher.seed * 31 + offset)
                probs = student.probabilities(x_held)
                agree = probs.argmax(axis=1) == truth
                matched[mode] += int(agree.sum())
                task_scores[mode] = float(agree.mean())
                with_soft = [i for i, a in enumerate(held) if a.soft is not None]
                if with_soft:
                    kls[mode].append(_kl(np.array([held[i].soft for i in with_soft]), probs[with_soft]))
            matched["baseline"] += int(np.sum(truth == task.labels.index(majority)))
            evaluated += len(held)
            per_task[task_id] = task_scores
        share = (lambda key: matched[key] / evaluated if evaluated else 0.0)
        points.append(CurvePoint(
            n, calls, tokens, seconds, share("hard"), share("soft") if soft_available else None, share("baseline"),
            float(np.mean(kls["hard"])) if kls["hard"] else None,
            float(np.mean(kls["soft"])) if kls["soft"] else None, per_task))
        yield Progress(STAGE, done, total, f"{n} samples per task: student agrees with the teacher on "
                                           f"{points[-1].hard_agreement:.0%} of held-out inputs")
    return StudentResult(teacher.style, teacher.seed, sum(len(teacher.for_task(t, True)) for t in tasks.tasks),
                        points, held_cost, embed_seconds, time.perf_counter() - started)
