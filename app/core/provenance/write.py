"""Write the three provenance files for a matched dataset: README.md, croissant.json, provenance.dsse.json.

The statement is collected once (`iter_statement`), signed with the publisher's key, and the card
and the Croissant file are rendered from the same content, so the three always agree. The public
key is written beside them (`provenance.pub.pem`) for whoever wants to pin it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.cancel import NEVER, CancelToken
from app.core.errors import StillroomError
from app.core.progress import Progress, drive
from app.core.privacy import write_atomically
from app.core.provenance.card import CARD_MARKER, render_card
from app.core.provenance.croissant import croissant_document
from app.core.provenance.inclusion import inclusion_for
from app.core.provenance.signing import (
    in_toto_statement,
    key_fingerprint,
    load_or_create_key,
    public_key_pem,
    sign_envelope,
)
from app.core.provenance.statement import Declared, iter_statement
from app.core.store.events import record_event_at

if TYPE_CHECKING:
    from app.core.audit.embeddings import Encoder
    from app.core.provenance.match import MatchReport

CARD_FILE = "README.md"
CROISSANT_FILE = "croissant.json"
DSSE_FILE = "provenance.dsse.json"
PUBLIC_KEY_FILE = "provenance.pub.pem"


class ProvenanceWriteError(StillroomError):
    """The output folder cannot be written, or would overwrite a file Stillroom did not write."""


class NothingTraced(ProvenanceWriteError):
    """The statement would trace no row of the dataset to the ledger, and that was not allowed."""


def relative_data_path(dataset_path: Path, out_dir: Path) -> str:
    """The dataset file as seen from the output folder (a POSIX path, as the card and Croissant want)."""
    return Path(os.path.relpath(dataset_path.resolve(), out_dir.resolve())).as_posix()


def _check_overwrite(out_dir: Path, force: bool) -> None:
    card = out_dir / CARD_FILE
    if force or not card.exists() or card.stat().st_size == 0:  # an empty file holds nothing to lose
        return
    try:
        head = card.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError as exc:
        raise ProvenanceWriteError(f"{card}: cannot read ({exc.strerror or exc})") from exc
    if CARD_MARKER not in head:
        raise ProvenanceWriteError(f"{card} exists and was not written by Stillroom; choose another output "
                                   "folder or overwrite it on purpose (--force)")


def signed_envelope(predicate: dict[str, Any], dataset_name: str, dataset_sha256: str,
                    key_dir: Path | str | None = None) -> dict[str, Any]:
    """The predicate, with the signer's public key added, as a signed in-toto statement in DSSE."""
    key = load_or_create_key(key_dir)
    predicate = dict(predicate)
    predicate["signer"] = {"algorithm": "ed25519", "keyid": key_fingerprint(key), "public_key": public_key_pem(key)}
    return sign_envelope(in_toto_statement(dataset_name, dataset_sha256, predicate), key)


def iter_provenance(report: MatchReport, ledger_path: Path | str, declared: Declared, out_dir: Path | str, *,
                    key_dir: Path | str | None = None, screen: bool = True, encoder: Encoder | None = None,
                    force: bool = False, allow_untraced: bool = False, cancel: CancelToken = NEVER
                    ) -> Generator[Progress, None, dict[str, Path]]:
    """Collect, sign and write; yields Progress, returns {"card", "croissant", "dsse", "public_key"}.

    Runs on the caller's thread. Raises NothingTraced before anything is written when no row of
    the dataset is traced to the ledger (unless allow_untraced), and ProvenanceWriteError before
    collecting anything when the output folder would lose a README.md that Stillroom did not
    write (unless force).
    """
    refuse_untraced(report, allow_untraced)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProvenanceWriteError(f"{out_dir}: cannot create the output folder ({exc.strerror or exc})") from exc
    _check_overwrite(out_dir, force)
    predicate = yield from iter_statement(report, ledger_path, declared, cancel=cancel, screen=screen,
                                          encoder=encoder)
    yield Progress("inclusion proofs", 0, None)
    predicate["inclusion"] = inclusion_for(report, ledger_path, load_or_create_key(key_dir))
    dataset_path = Path(report.dataset_path)
    data_path = relative_data_path(dataset_path, out_dir)
    envelope = signed_envelope(predicate, report.dataset_name, report.dataset_sha256, key_dir)
    paths = {"card": out_dir / CARD_FILE, "croissant": out_dir / CROISSANT_FILE, "dsse": out_dir / DSSE_FILE,
             "public_key": out_dir / PUBLIC_KEY_FILE}
    texts = {
        "card": render_card(predicate, data_path),
        "croissant": json.dumps(croissant_document(predicate, dataset_path, data_path), indent=2,
                                ensure_ascii=False) + "\n",
        "dsse": json.dumps(envelope, indent=2) + "\n",
        "public_key": predicate_key(envelope),
    }
    for name, path in paths.items():
        try:
            write_atomically(path, texts[name].encode("utf-8"))
        except OSError as exc:
            raise ProvenanceWriteError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    record_event_at(ledger_path, "statement",
                    f"provenance statement for {report.dataset_name} written to {out_dir}",
                    {"dataset": report.dataset_name, "dataset_sha256": report.dataset_sha256,
                     "out_dir": str(out_dir), "files": {name: str(path) for name, path in paths.items()},
                     "keyids": [sig.get("keyid") for sig in envelope.get("signatures", [])]})
    return paths


def refuse_untraced(report: MatchReport, allow_untraced: bool) -> None:
    """NothingTraced saying why, when the report traces no row and that is not allowed."""
    reason = report.nothing_traced()
    if reason is not None and not allow_untraced:
        raise NothingTraced(f"{reason}; a signed statement would vouch for nothing. Not signed: check the "
                            "dataset's fields and the ledger, or sign it anyway on purpose (allow untraced)")


def predicate_key(envelope: dict[str, Any]) -> str:
    """The signer's public key PEM from a freshly signed envelope."""
    import base64

    statement = json.loads(base64.b64decode(envelope["payload"]))
    return str(statement["predicate"]["signer"]["public_key"])


def write_provenance(report: MatchReport, ledger_path: Path | str, declared: Declared, out_dir: Path | str, *,
                     key_dir: Path | str | None = None, screen: bool = True, encoder: Encoder | None = None,
                     force: bool = False, allow_untraced: bool = False,
                     cancel: CancelToken = NEVER) -> dict[str, Path]:
    """Write the provenance files (drives iter_provenance to its end); returns their paths."""
    return drive(iter_provenance(report, ledger_path, declared, out_dir, key_dir=key_dir, screen=screen,
                                 encoder=encoder, force=force, allow_untraced=allow_untraced, cancel=cancel))
