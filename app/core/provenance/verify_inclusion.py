"""The checks `stillroom verify` runs on a statement's checkpoint and inclusion proofs (no ledger).

Adds to a VerifyResult, in order: the checkpoint's signature (by the key that signed the statement),
that every exactly traced dataset row is in the tree at that checkpoint (app.core.provenance.inclusion),
and how the checkpoint compares with those this verifier has seen before (checkpoints_seen: first
seen, the same, consistent with an earlier one, or a fork). Near-traced rows are listed as a claim:
their text differs from what was generated, so no proof can cover them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.core.provenance.checkpoints_seen import CheckpointsSeen, SeenError
from app.core.provenance.inclusion import FORMAT, check_inclusion, shape_from_predicate

MAX_CONSISTENCY_FILE = 64 * 1024


def add_inclusion_checks(result: Any, dataset_path: Path, seen_file: Path | None,
                         consistency_file: Path | None) -> None:
    """Check the `inclusion` section of result.predicate (signature already verified, key in
    result.public_key); record checks, claims and result.inclusion_summary."""
    predicate = result.predicate or {}
    section = predicate.get("inclusion")
    _near_claim(result, predicate)
    if section is None:
        result.inclusion_summary = "the statement carries no inclusion proofs"
        return
    if not isinstance(section, dict) or section.get("format") != FORMAT:
        result.add("inclusion proof", False, f"the statement's inclusion section is not {FORMAT}")
        return
    shape = shape_from_predicate(predicate)
    if shape is None or result.public_key is None:
        result.add("inclusion proof", False, "the statement does not say how its dataset is read (its dataset "
                   "section is damaged), so its rows cannot be checked")
        return
    outcome = check_inclusion(section, result.public_key, dataset_path, shape, predicate)
    for name, ok, detail in outcome.checks:
        result.add(name, ok, detail)
    if outcome.checkpoint is None:
        return
    if outcome.ok:
        result.inclusion_summary = (f"{outcome.proven} exactly traced rows proven in the publisher's log at "
                                    f"checkpoint {outcome.checkpoint.size}")
    if seen_file is None:
        return
    proofs = [str(item.get("proof")) for item in section.get("consistency") or [] if isinstance(item, dict)]
    if consistency_file is not None:
        try:
            if consistency_file.stat().st_size > MAX_CONSISTENCY_FILE:
                result.add("consistency", False, f"{consistency_file.name}: too large to be a consistency proof")
                return
            proofs.insert(0, consistency_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            result.add("consistency", False, f"{consistency_file.name}: cannot read the consistency proof ({exc})")
            return
    try:
        meeting = CheckpointsSeen(seen_file).meet(str(result.keyid), outcome.checkpoint, proofs)
    except SeenError as exc:
        result.add("consistency", False, f"the checkpoints seen before cannot be used: {exc}")
        return
    result.add("fork" if meeting.fork else "consistency", meeting.ok, meeting.detail)


def _near_claim(result: Any, predicate: dict[str, Any]) -> None:
    matching = predicate.get("matching")
    counts = matching.get("counts") if isinstance(matching, dict) else None
    near = counts.get("traced-near") if isinstance(counts, dict) else None
    if isinstance(near, int) and not isinstance(near, bool) and near > 0:
        result.claims.append(("near-traced", f"{near} row(s) were traced near: "
                              "their text was edited after generation, so no inclusion proof covers them; the "
                              "statement claims only that they resemble rows of the publisher's ledger, which "
                              "nothing here checks"))
