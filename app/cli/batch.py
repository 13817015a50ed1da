"""`stillroom batch run|resume|list`: synthetic-data batch runs from a job file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from app.core.batch.jobs import create_job, get_job, list_jobs
from app.core.batch.run import BatchControl, BatchProgress, run_batch
from app.core.batch.spec import check_output_free, load_spec
from app.core.progress import drive
from app.core.store import Ledger
from app.cli.common import echo_err, load_runner, model_options, with_ledger


def _show_progress(event: BatchProgress) -> None:
    rate = f"{event.tokens_per_s:.1f} tok/s" if event.tokens_per_s else "-"
    eta = f"ETA {event.eta_s:.0f}s" if event.eta_s is not None else ""
    sys.stderr.write(f"\r{event.done}/{event.total}  {rate}  {eta}   ")
    sys.stderr.flush()


def _run(ledger: Ledger, job_id: int, kwargs: dict[str, Any]) -> None:
    job = get_job(ledger.db, job_id)
    if job.spec.model and kwargs.get("model_ref") in (None, "default"):
        kwargs["model_ref"] = job.spec.model
    runner = load_runner(ledger, kwargs)
    control = BatchControl()
    loaded = runner.loaded
    assert loaded is not None
    echo_err(f"batch job #{job_id} '{job.name}' -> {job.output_path} ({job.total} generations) "
             f"with {loaded.info.name} ({loaded.sha256[:12]})")
    try:
        finished = drive(run_batch(ledger, runner, job_id, control), _show_progress)
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        echo_err(f"stopped; committed generations are kept. Resume with: stillroom batch resume {job_id}")
        raise SystemExit(130) from None
    finally:
        runner.unload()
    sys.stderr.write("\n")
    echo_err(f"job #{job_id} {finished.status}: {finished.done}/{finished.total} generations")
    if finished.status == "failed":
        raise click.ClickException(f"batch job #{job_id} failed: {finished.error}")


@click.group()
def batch() -> None:
    """Synthetic-data batch runs: a prompt template x inputs x samples, logged and resumable."""


@batch.command("run")
@model_options
@click.option("--allow-outside-output", is_flag=True,
              help="Let the job's output be an absolute path, start with ~ or leave the job file's folder.")
@click.option("--force", is_flag=True, help="Replace the output file if it exists already.")
@click.argument("job_file", type=click.Path(path_type=Path))
@with_ledger
def run_command(ledger: Ledger, job_file: Path, allow_outside_output: bool, force: bool, **kwargs: Any) -> None:
    """Create a job from JOB_FILE (YAML) and run it.

    The output is written beside the job file: a job whose output is elsewhere is refused unless
    --allow-outside-output, and an existing output file is not replaced unless --force."""
    spec = load_spec(job_file, allow_outside=allow_outside_output)
    check_output_free(spec.output, force)
    job = create_job(ledger.db, spec)
    _run(ledger, job.id, kwargs)


@batch.command("resume")
@model_options
@click.argument("job_id", type=int)
@with_ledger
def resume_command(ledger: Ledger, job_id: int, **kwargs: Any) -> None:
    """Continue a paused, cancelled or interrupted job where its committed generations stop."""
    _run(ledger, job_id, kwargs)


@batch.command("list")
@with_ledger
def list_command(ledger: Ledger) -> None:
    """All batch jobs with their progress."""
    from app.core.batch.jobs import done_keys

    jobs = list_jobs(ledger.db)
    if not jobs:
        echo_err("no batch jobs yet; `stillroom batch run JOB.yaml` starts one")
    for job in jobs:
        done = len(done_keys(ledger.db, job.id))
        click.echo(f"#{job.id:<4} {job.name[:24]:<24} {job.status:<9} {done:>6}/{job.total:<6} "
                   f"workflow={job.workflow}  {job.output_path}")
