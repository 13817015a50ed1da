"""`stillroom log checkpoint | prove | consistency`: the ledger's Merkle tree, for publishing."""

from __future__ import annotations

import base64

import click

from app.core.provenance.signing import load_or_create_key
from app.core.store import Ledger
from app.core.store.checkpoint import (
    consistency_text,
    latest_checkpoint,
    log_verifier,
    prove_row_text,
    signed_roots,
)
from app.core.store.db import translate_errors
from app.core.store.tree import verify_tree
from app.cli.common import echo_err, with_ledger


@click.command("checkpoint")
@with_ledger
def checkpoint_command(ledger: Ledger) -> None:
    """Print the latest signed checkpoint of the ledger's Merkle tree (made first if the tree grew).

    The checkpoint is a C2SP signed note signed with your provenance key; the verifier key is
    printed on stderr."""
    key = load_or_create_key()
    with translate_errors(ledger.path):
        signed = latest_checkpoint(ledger.db.conn, key)
        verifier = log_verifier(ledger.db.conn, key)
    click.echo(signed, nl=False)
    echo_err(f"verifier key: {verifier.text()}")


@click.command("prove")
@click.argument("generation_id", type=int)
@with_ledger
def prove_command(ledger: Ledger, generation_id: int) -> None:
    """Print row GENERATION_ID's inclusion proof (c2sp.org/tlog-proof@v1) against the latest checkpoint.

    Its `extra` line discloses the row's leaf data, salt included: publish it only for a row you publish."""
    key = load_or_create_key()
    with translate_errors(ledger.path):
        click.echo(prove_row_text(ledger.db.conn, generation_id, key), nl=False)


@click.command("consistency")
@click.argument("old_size", type=int)
@click.argument("new_size", type=int, required=False)
@with_ledger
def consistency_command(ledger: Ledger, old_size: int, new_size: int | None) -> None:
    """Print a proof that the tree of NEW_SIZE rows (default: all) extends the tree of OLD_SIZE rows."""
    with translate_errors(ledger.path):
        click.echo(consistency_text(ledger.db.conn, old_size, new_size), nl=False)


COMMANDS = (checkpoint_command, prove_command, consistency_command)


def report_tree(ledger: Ledger) -> None:
    """Rebuild the Merkle tree from the rows and check it against the stored tree and every
    checkpoint made; print its size and root, or fail naming the first row that disagrees."""
    with translate_errors(ledger.path):
        conn = ledger.db.conn
        result = verify_tree(conn, signed_roots(conn))
    if result is None:
        raise click.ClickException("the Merkle tree check was cancelled")
    if not result.ok:
        raise click.ClickException(f"Merkle tree broken at row {result.bad_id}: {result.problem}")
    root = base64.b64encode(result.root or b"").decode()
    click.echo(f"Merkle tree intact: {result.leaves} leaves, root {root}")
