"""DSSE envelopes checked by a third party's implementation (securesystemslib), both ways.

securesystemslib verifies the envelopes `stillroom provenance` writes, with the key id Stillroom
puts in them (the sha256 of the raw public key, also `stillroom provenance key`'s fingerprint), and
rejects them once a byte of the payload changes; an envelope signed by securesystemslib, whose
signature carries its own key id or none, verifies with `stillroom verify --key`.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey

from app.core.provenance.match import run_match
from app.core.provenance.signing import PAYLOAD_TYPE, key_fingerprint, load_or_create_key, load_public_key
from app.core.provenance.statement import Declared
from app.core.provenance.verify import verify_statement
from app.core.provenance.write import write_provenance
from app.core.store import Ledger
from tests.core.records import record


@pytest.fixture
def released(ledger: Ledger, tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    ledger.append_many([record(i) for i in range(4)])
    dataset = tmp_path / "release" / "d.jsonl"
    dataset.parent.mkdir()
    dataset.write_text("".join(json.dumps({"prompt": record(i)["prompt"], "response": record(i)["response"]}) + "\n"
                               for i in range(4)))
    paths = write_provenance(run_match(dataset, ledger.path), ledger.path, Declared(), dataset.parent,
                             key_dir=tmp_path / "keys", screen=False)
    return dataset, paths


def test_securesystemslib_verifies_our_envelope_with_its_key_id(released: tuple[Path, dict[str, Path]]) -> None:
    _, paths = released
    public = load_public_key(paths["public_key"])
    keyid = key_fingerprint(public)
    key = SSlibKey.from_crypto(public, keyid=keyid)
    envelope = Envelope.from_dict(json.loads(paths["dsse"].read_text()))
    assert envelope.payload_type == PAYLOAD_TYPE
    accepted = envelope.verify([key], 1)
    assert list(accepted) == [keyid]
    envelope.payload = envelope.payload + b" "
    with pytest.raises(VerificationError):
        envelope.verify([key], 1)


@pytest.mark.parametrize("keyid", ["securesystemslib-id", ""])
def test_an_envelope_signed_by_securesystemslib_verifies(released: tuple[Path, dict[str, Path]], tmp_path: Path,
                                                         keyid: str) -> None:
    dataset, paths = released
    private = load_or_create_key(tmp_path / "keys")
    statement = json.loads(base64.b64decode(json.loads(paths["dsse"].read_text())["payload"]))
    signer = CryptoSigner(private, SSlibKey.from_crypto(private.public_key(), keyid=keyid or "x"))
    envelope = Envelope(json.dumps(statement).encode("utf-8"), PAYLOAD_TYPE, {})
    envelope.sign(signer)
    document = envelope.to_dict()
    for signature in document["signatures"]:
        signature["keyid"] = keyid
    paths["dsse"].write_text(json.dumps(document))
    result = verify_statement(paths["dsse"], dataset, public_key=paths["public_key"])
    if keyid:  # a key id that names another key is refused, as before
        assert not result.ok and "not by the key given" in result.reasons[0]
    else:
        assert result.ok, result.reasons
