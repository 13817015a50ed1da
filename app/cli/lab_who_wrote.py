"""`stillroom lab who-wrote`: the lab's "Who wrote this?" step (app.core.lab.who_wrote)."""

from __future__ import annotations

import json

import click

from app.cli.common import echo_err, terminal_safe, with_ledger
from app.core.generation import LogContext, run_to_end
from app.core.lab.tasks import load_tasks
from app.core.lab.who_wrote import WORKFLOW_PREFIX, ask_teachers, questions, teacher_texts, who_wrote
from app.core.models.bundled import default_params
from app.core.models.chat_model import CHAT_ALIAS
from app.core.models.default_model import DEFAULT_ALIAS
from app.core.models.resolve import resolve_model
from app.core.models.runner import LoadOptions, Runner
from app.core.models.sampling import GenerationRequest
from app.core.progress import drive
from app.core.store import Ledger

TEACHERS = {"gemma": DEFAULT_ALIAS, "smollm2": CHAT_ALIAS}


def _generate(ledger: Ledger, inputs: int, tokens: int, seed: int) -> None:
    prompts = questions(load_tasks(), inputs)
    for name, alias in TEACHERS.items():
        workflow = WORKFLOW_PREFIX + name
        have = len(teacher_texts(ledger.db, workflow))
        if have >= len(prompts):
            continue
        record = resolve_model(ledger.db, alias)
        runner = Runner()
        runner.load(record.sha256, record.info, LoadOptions(n_ctx=1024))

        def ask(prompt: str, i: int, alias: str = alias, runner: Runner = runner, workflow: str = workflow,
                file_name: str = record.info.file_name) -> None:
            params = default_params(file_name, max_tokens=tokens, seed=seed + i)
            request = (GenerationRequest("chat", messages=[{"role": "user", "content": prompt}], params=params)
                       if alias == CHAT_ALIAS else GenerationRequest("completion", prompt=prompt + "\n", params=params))
            run_to_end(runner, ledger, request, LogContext("lab", workflow=workflow))

        try:
            drive(ask_teachers([(name, ask)], prompts[have:]))
        finally:
            runner.unload()


def register(lab: click.Group) -> None:
    """Add `who-wrote` to the lab group."""

    @lab.command("who-wrote")
    @click.option("--workflows", nargs=2, default=None, metavar="A B",
                  help="Use two ledger workflows as the teachers instead of asking the bundled models.")
    @click.option("--inputs", type=int, default=120, show_default=True, help="Inputs each bundled teacher answers.")
    @click.option("--tokens", type=int, default=40, show_default=True, help="Most tokens per answer.")
    @click.option("--seed", type=int, default=7, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    @with_ledger
    def who_wrote_command(ledger: Ledger, workflows: tuple[str, str] | None, inputs: int, tokens: int, seed: int,
                          as_json: bool) -> None:
        """Who wrote this? Two teachers answer the same inputs; the screener learns their styles and
        guesses the author of held-out answers, with its accuracy against the number of examples."""
        if not workflows:
            _generate(ledger, inputs, tokens, seed)
            workflows = tuple(WORKFLOW_PREFIX + name for name in TEACHERS)  # type: ignore[assignment]
        assert workflows is not None
        texts = {name: teacher_texts(ledger.db, name) for name in workflows}
        result = drive(who_wrote(texts, seed))
        assert result is not None
        if as_json:
            click.echo(terminal_safe(json.dumps(result.as_dict(), ensure_ascii=False)))
            return
        click.echo(f"teachers: {terminal_safe(' vs '.join(result.teachers))}; {result.heldout} held-out answers")
        click.echo("answers per teacher  held-out accuracy")
        for point in result.curve:
            click.echo(f"{point.per_teacher:>19}  {point.accuracy * 100:16.1f}%")
        for guess in result.guesses:
            mark = "right" if guess["author"] == guess["guess"] else "wrong"
            echo_err(terminal_safe(f"[{mark}] {guess['author']} wrote: {guess['answer'][:90]} (guess: {guess['guess']})"))
