"""The `stillroom` command group."""

from __future__ import annotations

import click

from app import __version__
from app.cli.common import UserFacingGroup
from app.cli.audit import audit
from app.cli.batch import batch
from app.cli.doctor import doctor
from app.cli.generate import chat, generate
from app.cli.import_cmd import import_command
from app.cli.lab import lab
from app.cli.log import log
from app.cli.models import models
from app.cli.provenance import provenance, verify
from app.cli.proxy import proxy
from app.cli.screen import screen
from app.cli.serve import keys, serve
from app.cli.usage import usage


@click.group(cls=UserFacingGroup)
@click.version_option(__version__, prog_name="stillroom")
def cli() -> None:
    """Stillroom: local language models with an honest, tamper-evident ledger.

    With no command, `stillroom` opens the desktop app. Data lives in STILLROOM_HOME
    (default: the platform's user data folder).
    """


cli.add_command(generate)
cli.add_command(chat)
cli.add_command(log)
cli.add_command(models)
cli.add_command(serve)
cli.add_command(proxy)
cli.add_command(keys)
cli.add_command(batch)
cli.add_command(audit)
cli.add_command(import_command)
cli.add_command(lab)
cli.add_command(doctor)
cli.add_command(provenance)
cli.add_command(verify)
cli.add_command(usage)
cli.add_command(screen)
