"""`stillroom models ...`: register GGUF files and show what is known about them."""

from __future__ import annotations

import json
from pathlib import Path

import click

from app.core.models.registry import find_model, list_models, register_model, remove_model
from app.core.store import Ledger
from app.cli.common import with_ledger

MIB = 1024**2


@click.group()
def models() -> None:
    """Register and inspect GGUF model files."""


@models.command("add")
@click.argument("path", type=click.Path(path_type=Path))
@with_ledger
def add_command(ledger: Ledger, path: Path) -> None:
    """Register a GGUF file: read its metadata and hash it."""
    record = register_model(ledger.db, path)
    info = record.info
    click.echo(f"added {info.name} ({info.architecture}, {info.quantization or '?'}, "
               f"{info.size_bytes / MIB:.0f} MiB) sha256 {record.sha256}")


@models.command("list")
@click.option("--json", "as_json", is_flag=True)
@with_ledger
def list_command(ledger: Ledger, as_json: bool) -> None:
    """Registered models, newest first."""
    rows = list_models(ledger.db)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no models registered; `stillroom models add PATH` registers one")
    for row in rows:
        flag = "" if row["present"] else "  (file missing)"
        click.echo(f"{row['sha256'][:12]}  {row['name'][:28]:<28} {row['architecture']:<10} "
                   f"{(row['quantization'] or '?'):<8} {row['size_bytes'] / MIB:>7.0f} MiB  "
                   f"ctx {row['context_length'] or '?':<6} {row['path']}{flag}")


@models.command("info")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@with_ledger
def info_command(ledger: Ledger, ref: str, as_json: bool) -> None:
    """Everything known about a model, by path or sha256 (prefix). A path not yet registered is added."""
    if Path(ref).expanduser().exists():
        register_model(ledger.db, Path(ref))
    model = find_model(ledger.db, ref)
    if as_json:
        click.echo(json.dumps(model, indent=2, default=str))
        return
    for key in ("name", "sha256", "path", "architecture", "quantization", "size_label", "license", "base_model",
                "context_length", "has_chat_template", "added_at"):
        click.echo(f"{key:>17}: {model.get(key)}")
    click.echo(f"{'size':>17}: {model['size_bytes'] / MIB:.1f} MiB")


@models.command("remove")
@click.argument("ref")
@with_ledger
def remove_command(ledger: Ledger, ref: str) -> None:
    """Forget a registered model (by path or sha256 prefix). The file and the ledger rows that name it stay."""
    model = remove_model(ledger.db, ref)
    click.echo(f"removed {model['name']} ({model['sha256'][:12]}) from the registry; the file {model['path']} is kept")
