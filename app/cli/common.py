"""Shared pieces of the CLI: opening the ledger, loading a model, sampling options, errors."""

from __future__ import annotations

import functools
import signal
import sys
import threading
import unicodedata
from collections.abc import Callable
from typing import Any

import click

from app.core.errors import StillroomError
from app.core.models.bundled import default_params
from app.core.models.default_model import DEFAULT_ALIAS
from app.core.models.memory import check_fits
from app.core.models.resolve import resolve_model
from app.core.models.runner import LoadOptions, Runner
from app.core.models.sampling import SamplingParams
from app.core.paths import ledger_path
from app.core.store import Ledger


class UserFacingGroup(click.Group):
    """A click group that reports Stillroom's errors as one line on stderr, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StillroomError as exc:
            raise click.ClickException(str(exc)) from exc
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc


class DefaultCommandGroup(click.Group):
    """A group whose first argument, when it names no subcommand, goes to the hidden
    `default_command` (`provenance DATASET` runs `provenance write DATASET`)."""

    default_command = ""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


def parse_fields(pairs: tuple[str, ...]) -> dict[str, str] | None:
    """`--field ROLE=FIELD` options as {role: field} (None when there are none)."""
    fields: dict[str, str] = {}
    for pair in pairs:
        role, sep, name = pair.partition("=")
        if not sep or not role.strip() or not name.strip():
            raise click.BadParameter(f"{pair!r}: give ROLE=FIELD, e.g. prompt=instruction", param_hint="--field")
        fields[role.strip()] = name.strip()
    return fields or None


def open_ledger() -> Ledger:
    """The ledger in the data folder (STILLROOM_HOME or the platform's user data folder)."""
    return Ledger.open(ledger_path())


def model_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--model, --n-ctx, --n-gpu-layers, --threads, --chat-format."""
    options = [
        click.option("--model", "model_ref", default=None,
                     help="A GGUF path, a registered model's sha256 prefix, 'chat' (the bundled SmolLM2 135M "
                          "Instruct) or 'default' (the bundled Gemma 3 270M base). Default: 'chat' for chat, "
                          "'default' for completions."),
        click.option("--n-ctx", type=int, default=4096, show_default=True, help="Context length in tokens."),
        click.option("--n-gpu-layers", type=int, default=0, show_default=True,
                     help="Layers to offload to the GPU (-1 for all; needs a GPU build)."),
        click.option("--threads", type=int, default=None, help="CPU threads (default: all cores)."),
        click.option("--chat-format", default="auto", show_default=True,
                     help="Chat format: auto, template, gemma, chatml, llama-2, llama-3, mistral-instruct, plain."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def sampling_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The sampling parameters, all logged with every generation. Those not given take the model's
    defaults (see app.core.models.bundled), else SamplingParams' defaults."""
    defaults = SamplingParams()
    options = [
        click.option("--temperature", type=float, default=None,
                     help=f"Default: the model's own, else {defaults.temperature}."),
        click.option("--top-p", type=float, default=None, help=f"Default: the model's own, else {defaults.top_p}."),
        click.option("--top-k", type=int, default=None, help=f"Default: the model's own, else {defaults.top_k}."),
        click.option("--min-p", type=float, default=None, help=f"Default: the model's own, else {defaults.min_p}."),
        click.option("--repeat-penalty", type=float, default=None,
                     help=f"Default: the model's own, else {defaults.repeat_penalty}."),
        click.option("--max-tokens", type=int, default=None,
                     help=f"Default: the model's own, else {defaults.max_tokens}."),
        click.option("--seed", type=int, default=None, help="Sampling seed (default: drawn and logged)."),
        click.option("--stop", multiple=True, help="Stop sequence (repeatable)."),
        click.option("--logprobs", type=int, default=None, help="Log the top-N log probabilities per token."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def params_from(kwargs: dict[str, Any], runner: Runner | None = None) -> SamplingParams:
    """SamplingParams from the options added by sampling_options (removed from kwargs); options
    not given take the defaults of the model `runner` has loaded."""
    loaded = runner.loaded if runner is not None else None
    return default_params(
        loaded.info.file_name if loaded else None,
        temperature=kwargs.pop("temperature"), top_p=kwargs.pop("top_p"), top_k=kwargs.pop("top_k"),
        min_p=kwargs.pop("min_p"), repeat_penalty=kwargs.pop("repeat_penalty"),
        max_tokens=kwargs.pop("max_tokens"), seed=kwargs.pop("seed"), stop=list(kwargs.pop("stop")) or None,
        logprobs=kwargs.pop("logprobs"),
    )


def load_runner(ledger: Ledger, kwargs: dict[str, Any], fallback: str = DEFAULT_ALIAS) -> Runner:
    """Register and load the model named by the options added by model_options (removed from kwargs);
    `fallback` ('chat' or 'default') when --model was not given."""
    ref = kwargs.pop("model_ref") or fallback
    options = LoadOptions(n_ctx=kwargs.pop("n_ctx"), n_gpu_layers=kwargs.pop("n_gpu_layers"),
                          n_threads=kwargs.pop("threads"), chat_format=kwargs.pop("chat_format"))
    record = resolve_model(ledger.db, ref, lambda info: check_fits(info, options.n_ctx, options.n_gpu_layers))
    runner = Runner()
    runner.load(record.sha256, record.info, options)
    return runner


def echo_err(message: str) -> None:
    """A line on stderr (status and statistics, kept out of the generated text on stdout)."""
    click.echo(message, err=True)


def run_until_stopped(server: Any) -> None:
    """Say whether keys are required, then keep a started server (serve, proxy) running until Ctrl+C
    or SIGTERM, and stop it."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    echo_err(f"keys {'required' if server.require_key else 'optional'}. Ctrl+C stops.")
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        echo_err("stopping...")
        server.stop()


def stdin_or(text: str) -> str:
    """`text`, or all of standard input when text is '-'."""
    return sys.stdin.read() if text == "-" else text


def with_ledger(func: Callable[..., Any]) -> Callable[..., Any]:
    """Pass an open Ledger as the first argument and close it afterwards."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ledger = open_ledger()
        try:
            return func(ledger, *args, **kwargs)
        finally:
            ledger.close()

    return wrapper


def terminal_safe(text: str) -> str:
    """`text` with control and format characters (escape sequences, carriage returns, bidi overrides)
    shown as escapes, so that details that came from outside cannot drive the terminal."""
    out = []
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)
