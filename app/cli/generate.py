"""`stillroom generate` and `stillroom chat`: run the model, stream to stdout, log every turn."""

from __future__ import annotations

import sys
import uuid
from typing import Any

import click

from app.core.models.chat_model import CHAT_ALIAS
from app.core.models.default_model import DEFAULT_ALIAS
from app.core.generation import LogContext, LoggedGeneration, generate_logged
from app.core.models.runner import Runner
from app.core.models.sampling import GenerationRequest
from app.core.store import Ledger
from app.cli.common import echo_err, load_runner, model_options, params_from, sampling_options, stdin_or, with_ledger


def _stream(runner: Runner, ledger: Ledger, request: GenerationRequest, context: LogContext) -> LoggedGeneration:
    final: LoggedGeneration | None = None
    try:
        for item in generate_logged(runner, ledger, request, context):
            if isinstance(item, LoggedGeneration):
                final = item
            else:
                sys.stdout.write(item.text)
                sys.stdout.flush()
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        echo_err("cancelled; the partial text was logged")
        raise SystemExit(130) from None
    sys.stdout.write("\n")
    assert final is not None
    return final


def _report(final: LoggedGeneration) -> None:
    result = final.result
    rate = f"{result.tokens_per_s:.1f} tokens/s" if result.tokens_per_s else "n/a tokens/s"
    echo_err(f"[#{final.generation_id} {result.status}, {result.finish_reason}: {result.prompt_tokens} prompt "
             f"+ {result.completion_tokens} generated tokens, {rate}, seed {result.seed}]")


@click.command()
@model_options
@sampling_options
@click.option("--chat", is_flag=True, help="Send PROMPT as a chat message (uses the model's chat format).")
@click.option("--system", "system_prompt", default=None, help="System prompt (with --chat).")
@click.option("--workflow", default=None, help="Workflow name the generation is logged under.")
@click.option("--quiet", "-q", is_flag=True, help="Do not print the statistics line.")
@click.argument("prompt")
@with_ledger
def generate(ledger: Ledger, prompt: str, chat: bool, system_prompt: str | None, workflow: str | None,
             quiet: bool, **kwargs: Any) -> None:
    """Generate from PROMPT ('-' reads standard input), stream it to stdout and log it.

    The model is the bundled chat model with --chat, else the default (completion) model, unless
    --model names another."""
    if system_prompt and not chat:
        raise click.UsageError("--system needs --chat (a plain completion has no system prompt)")
    text = stdin_or(prompt)
    runner = load_runner(ledger, kwargs, CHAT_ALIAS if chat else DEFAULT_ALIAS)
    try:
        params = params_from(kwargs, runner)
        if chat:
            request = GenerationRequest("chat", messages=[{"role": "user", "content": text}],
                                        system_prompt=system_prompt, params=params)
        else:
            request = GenerationRequest("completion", prompt=text, params=params)
        final = _stream(runner, ledger, request, LogContext("cli", workflow=workflow))
    finally:
        runner.unload()
    if not quiet:
        _report(final)
    if final.result.status == "error":
        raise click.ClickException(f"generation failed: {final.result.error}")


@click.command()
@model_options
@sampling_options
@click.option("--system", "system_prompt", default=None, help="System prompt for the conversation.")
@click.option("--workflow", default=None, help="Workflow name the turns are logged under.")
@with_ledger
def chat(ledger: Ledger, system_prompt: str | None, workflow: str | None, **kwargs: Any) -> None:
    """Chat in the terminal (the bundled chat model unless --model names another); every turn is logged
    as part of one conversation. Empty line or Ctrl+D quits."""
    runner = load_runner(ledger, kwargs, CHAT_ALIAS)
    params = params_from(kwargs, runner)
    loaded = runner.loaded
    assert loaded is not None
    echo_err(f"Stillroom chat with {loaded.info.name} ({loaded.sha256[:12]}, format {loaded.chat_format}). "
             "Empty line to quit.")
    conversation = str(uuid.uuid4())
    messages: list[dict[str, str]] = []
    parent: int | None = None
    try:
        while True:
            try:
                line = input("you> ")
            except EOFError:
                break
            if not line.strip():
                break
            messages.append({"role": "user", "content": line})
            request = GenerationRequest("chat", messages=list(messages), system_prompt=system_prompt, params=params)
            sys.stdout.write("model> ")
            final = _stream(runner, ledger, request,
                            LogContext("chat", workflow=workflow, conversation_id=conversation, parent_id=parent))
            messages.append({"role": "assistant", "content": final.result.text})
            parent = final.generation_id
    finally:
        runner.unload()
