"""`stillroom serve` (the OpenAI-compatible local endpoint) and `stillroom keys` (its API keys)."""

from __future__ import annotations

from typing import Any

import click

from app.core.models.runner import LoadOptions
from app.core.paths import ledger_path
from app.core.serve.api_keys import create_key, list_keys, revoke_key
from app.core.serve.server import DEFAULT_HOST, DEFAULT_PORT, StillroomServer
from app.core.store import Ledger
from app.cli.common import echo_err, model_options, run_until_stopped, with_ledger


@click.command()
@model_options
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to bind. Anything but loopback requires an API key on every request.")
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True, help="Port (0 picks a free one).")
@click.option("--require-key", is_flag=True, help="Require an API key even on loopback.")
def serve(host: str, port: int, require_key: bool, **kwargs: Any) -> None:
    """Serve the registered models at an OpenAI-compatible endpoint; every request is logged (source
    `server`). --model is loaded first; 'default' in a request means the bundled chat model on
    /v1/chat/completions and the bundled Gemma 3 270M on /v1/completions.

    The workflow of a request comes from its API key, else the X-Stillroom-Workflow header,
    else `api`. Ctrl+C stops the server.
    """
    options = LoadOptions(n_ctx=kwargs["n_ctx"], n_gpu_layers=kwargs["n_gpu_layers"], n_threads=kwargs["threads"],
                          chat_format=kwargs["chat_format"])
    server = StillroomServer(ledger_path(), kwargs["model_ref"], host=host, port=port, options=options,
                             require_key=require_key or None)
    loaded = server.start()
    echo_err(f"Stillroom is serving {loaded.info.name} ({loaded.sha256[:12]}) at {server.url}")
    echo_err("models: " + ", ".join(m.id + (f" (default for {m.role})" if m.role else "") for m in server.catalog())
             + "; a request naming another model loads it in place of the one loaded.")
    run_until_stopped(server)


@click.group()
def keys() -> None:
    """API keys of the local server; each names the workflow its requests are logged under."""


@keys.command("create")
@click.option("--workflow", required=True, help="Workflow the key's requests are logged under.")
@click.option("--name", default="", help="A label for the key (default: the workflow).")
@with_ledger
def create_command(ledger: Ledger, workflow: str, name: str) -> None:
    """Create a key and print it (it is shown only this once)."""
    key, secret = create_key(ledger.db, name, workflow)
    click.echo(secret)
    echo_err(f"key #{key.id} '{key.name}' for workflow '{key.workflow}'; store it now, it is not shown again")


@keys.command("list")
@with_ledger
def list_command(ledger: Ledger) -> None:
    """All keys (prefix only)."""
    for key in list_keys(ledger.db):
        state = f"revoked {key.revoked_at[:19]}" if key.revoked_at else "live"
        click.echo(f"#{key.id:<4} {key.prefix}…  {key.name:<20} workflow={key.workflow:<16} {state}")


@keys.command("revoke")
@click.argument("key_id", type=int)
@with_ledger
def revoke_command(ledger: Ledger, key_id: int) -> None:
    """Revoke a key by its id."""
    revoke_key(ledger.db, key_id)
    echo_err(f"key #{key_id} revoked")
