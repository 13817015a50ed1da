"""`stillroom proxy`: a logging proxy in front of any OpenAI-compatible engine."""

from __future__ import annotations


import click

from app.core.paths import ledger_path
from app.core.proxy.identity import METHOD_TEXT
from app.core.proxy.server import DEFAULT_PROXY_PORT, ProxyServer, upstream_key_from_env
from app.core.safetext import escape
from app.core.serve.server import DEFAULT_HOST
from app.cli.common import echo_err, run_until_stopped


@click.command()
@click.option("--upstream", "upstreams", multiple=True, required=True, metavar="URL",
              help="An engine's OpenAI base URL (e.g. http://localhost:11434/v1 for Ollama); repeat for several.")
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to bind. Anything but loopback requires an API key on every request.")
@click.option("--port", type=int, default=DEFAULT_PROXY_PORT, show_default=True, help="Port (0 picks a free one).")
@click.option("--upstream-key-env", metavar="NAME", default=None,
              help="Environment variable holding the engine's API key, sent to it as a bearer token.")
@click.option("--require-key", is_flag=True, help="Require a Stillroom API key even on loopback.")
def proxy(upstreams: tuple[str, ...], host: str, port: int, upstream_key_env: str | None, require_key: bool) -> None:
    """Forward every request to an OpenAI-compatible engine (llama.cpp's server, Ollama, LM Studio,
    vLLM, ...) unchanged, and log each request and its answer (source `proxy`) with the engine's
    address and the model's identity. With several --upstream, a request goes to an engine that
    lists its model, else to each in turn; an engine that is down gets the client a 502.

    Workflows and keys follow `stillroom serve`: the key's workflow, else the X-Stillroom-Workflow
    header, else `api`. Ctrl+C stops.
    """
    server = ProxyServer(ledger_path(), list(upstreams), host=host, port=port,
                         upstream_key=upstream_key_from_env(upstream_key_env), require_key=require_key or None)
    server.start()
    echo_err(f"Stillroom is proxying at {server.url}")
    for upstream in server.upstream_status():
        echo_err(f"upstream {escape(upstream['url'])}:")
        if not upstream["models"]:
            echo_err("  (did not list any model now; its models will be recorded by the names it reports)")
        for model in upstream["models"]:
            echo_err(f"  {escape(model['name'])}: {METHOD_TEXT[model['method']]} {escape(model['value'])[:80]}")
    run_until_stopped(server)
