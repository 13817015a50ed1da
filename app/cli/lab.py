"""`stillroom lab run`: the distillation lab, end to end (teacher -> student -> compare), with a lesson report."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from app.core.audit.embeddings import Encoder
from app.core.audit.patterns import PatternLibrary, load_library
from app.core.lab.lesson import write_lesson
from app.core.lab.run import run_lab
from app.core.lab.state import DEFAULT_SAMPLES, DEFAULT_SEED, LabConfig, LabState
from app.core.lab.styles import DEFAULT_STYLE, STYLES
from app.core.lab.tasks import TaskSet, load_tasks
from app.core.lab.teacher import direct_generate
from app.core.models.runner import Runner
from app.core.paths import data_dir
from app.core.progress import Progress, drive
from app.core.store import Ledger
from app.cli.common import echo_err, load_runner, model_options, with_ledger
from app.cli.lab_who_wrote import register as register_who_wrote

ALL_STYLES = "all"


@click.group()
def lab() -> None:
    """The distillation lab: a local teacher model labels tasks, a student is trained on its answers."""


@lab.command("run")
@click.option("--style", type=click.Choice((*STYLES, ALL_STYLES)), default=DEFAULT_STYLE, show_default=True,
              help="How the teacher is asked (logged under the workflow lab:<style>); 'all' runs the lab once "
                   "per style, so the audit shows every style side by side.")
@click.option("--samples", type=int, default=DEFAULT_SAMPLES, show_default=True,
              help="Teacher samples per task for the largest student (the curve doubles up to it).")
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True,
              help="Seed for the split, sampling and training.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for lesson.html, lab.json and the SVG plots (default: lab/<run> in the data folder).")
@model_options
@with_ledger
def run_command(ledger: Ledger, style: str, samples: int, seed: int, out: Path | None, **kwargs: Any) -> None:
    """Run the teacher, train the students, compare them and audit the lab's workflows."""
    tasks = load_tasks()
    styles = list(STYLES) if style == ALL_STYLES else [style]
    configs = [LabConfig(name, samples, seed).check(tasks) for name in styles]
    runner = load_runner(ledger, kwargs)
    teacher = runner.loaded
    assert teacher is not None
    echo_err(f"teacher model: {teacher.info.name} ({teacher.sha256[:12]})")
    encoder, library = Encoder(), load_library()
    try:
        for config in configs:
            if len(configs) > 1:
                click.echo(f"== style {config.style}")
            state = _run_one(runner, ledger, encoder, library, tasks, config)
            folder = out / config.style if out is not None and len(configs) > 1 else out
            folder = folder or data_dir() / "lab" / state.run_id
            lesson = write_lesson(state, tasks, folder / "lesson.html")
            (folder / "lab.json").write_text(state.to_json(), encoding="utf-8")
            _print_summary(state)
            echo_err(f"lesson report: {lesson}")
    finally:
        runner.unload()


register_who_wrote(lab)


def _run_one(runner: Runner, ledger: Ledger, encoder: Encoder, library: PatternLibrary, tasks: TaskSet,
             config: LabConfig) -> LabState:
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        state = drive(run_lab(direct_generate(runner, ledger), ledger, encoder, library, tasks, config),
                      _show_progress)
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        echo_err("stopped; the teacher calls made so far are in the ledger")
        raise SystemExit(130) from None
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    state.timings["total"] = time.perf_counter() - started
    state.timings["cpu"] = time.process_time() - cpu_started  # all threads: on a busy machine, what it needed
    return state


def _show_progress(item: Progress) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{item.stage} {item.done}/{item.total}: {item.message[:70]:<70}")
        sys.stderr.flush()


def _print_summary(state: LabState) -> None:
    teacher, student = state.teacher, state.student
    if teacher is not None:
        click.echo(f"teacher ({teacher.workflow}): {teacher.calls} calls, {teacher.tokens} tokens, "
                   f"{teacher.seconds:.1f} s")
    if student is not None:
        click.echo("samples/task  calls  tokens  seconds  hard   soft   baseline")
        for p in student.points:
            soft = "  -  " if p.soft_agreement is None else f"{p.soft_agreement:5.0%}"
            click.echo(f"{p.samples:>12}  {p.teacher_calls:>5}  {p.tokens:>6}  {p.seconds:>7.1f}  "
                       f"{p.hard_agreement:5.0%}  {soft}  {p.baseline_agreement:5.0%}")
        click.echo(f"held-out inputs: {student.held_out}")
    if state.compare is not None:
        for name, levels in state.compare.levels().items():
            raised = ", ".join(f"{pid} {level}" for pid, level in levels.items() if level != "none") or "none"
            click.echo(f"audit {name}: {raised}")
    click.echo("time: " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in state.timings.items()))
