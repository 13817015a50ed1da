"""What a provenance statement says: collected from a match report and the ledger it was matched to.

`iter_statement` is a generator (progress, then the predicate dict as its return value) so that a
worker can run it on a thread: it reads the traced generations in chunks, verifies the ledger's
chain and runs the audit's incremental screening for the traced workflows. `build_statement`
drives it to the end. Nothing is invented: what the ledger does not know is "unknown", what the
publisher did not declare is "not declared".
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import __version__
from app.core.cancel import NEVER, CancelToken
from app.core.errors import StillroomError
from app.core.progress import Progress, drive, map_progress
from app.core.store import Ledger, open_db
from app.core.store.db import translate_errors
from app.core.store.heads import remember
from app.core.textnorm import NORMALIZATION
from app.core.provenance.traced_ids import HASH_PREFIX_BYTES, encode_ids, hash_prefixes, traced_digest
from app.core.proxy.identity import GGUF_SHA256, METHOD_TEXT

if TYPE_CHECKING:
    from app.core.audit.embeddings import Encoder
    from app.core.provenance.match import MatchReport

STATEMENT_VERSION = 1
NOT_DECLARED = "not declared"
UNKNOWN = "unknown"
FETCH_CHUNK = 500
LISTED_VALUES = 12  # a parameter with more distinct values than this is summarized by min/max
TRACKED_VALUES = 200
NO_WORKFLOW = "(no workflow)"
GGUF_SHA256_METHOD = GGUF_SHA256
# What the hash chain of the ledger covers, and what it does not: a verifier can check the first
# against the ledger (`stillroom verify --ledger`); the rest is what the publisher's ledger said.
COVERAGE = {
    "covered_by_chain": [
        "traced (ids, row hashes, digest)", "ledger (head)", "models[].sha256", "models[].generations",
        "runtime.llama_cpp_python_logged", "sampling", "timeframe", "workflows", "sources",
    ],
    "not_covered_by_chain": {
        "models": "name, file_name, architecture, quantization, size_label, license, base_model and "
                  "context_length come from the ledger's models table, which the hash chain does not cover",
        "screening": "the screening levels come from the audit's scores table, which the hash chain does not "
                     "cover; anyone holding the ledger could have changed them",
        "declared": "what the publisher declared (name, license, description, intended use, creator); "
                    "nothing checks it",
        "dataset.rows, matching": "computed from the dataset when the statement was made; a verifier "
                                  "can recompute them with `stillroom provenance`",
    },
}


class StatementError(StillroomError):
    """The statement cannot be made (no ledger, cancelled)."""


@dataclass
class Declared:
    """What the publisher declares about the dataset; never filled in by Stillroom."""

    license: str | None = None
    description: str | None = None
    intended_use: str | None = None
    name: str | None = None
    creator: str | None = None

    def as_dict(self) -> dict[str, str]:
        """Each field, or "not declared"."""
        return {key: (value.strip() if isinstance(value, str) and value.strip() else NOT_DECLARED)
                for key, value in (("name", self.name), ("license", self.license),
                                   ("description", self.description), ("intended_use", self.intended_use),
                                   ("creator", self.creator))}


def utc_now_iso() -> str:
    """Now, in UTC, to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# -- summaries ------------------------------------------------------------------------------------

class ParamSummary:
    """Counts each sampling parameter's values over many generations, in bounded memory."""

    def __init__(self) -> None:
        self.values: dict[str, Counter[str]] = {}
        self.numbers: dict[str, list[float]] = {}  # name -> [min, max]
        self.overflow: set[str] = set()
        self.present: Counter[str] = Counter()
        self.without = 0

    def add(self, params: Any) -> None:
        """Count one generation's parameters (a dict, or anything else counted as missing)."""
        if not isinstance(params, dict) or not params:
            self.without += 1
            return
        for name, value in params.items():
            self.present[name] += 1
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                low_high = self.numbers.setdefault(name, [float(value), float(value)])
                low_high[0], low_high[1] = min(low_high[0], value), max(low_high[1], value)
            counter = self.values.setdefault(name, Counter())
            key = json.dumps(value, sort_keys=True, default=str)
            if key in counter or len(counter) < TRACKED_VALUES:
                counter[key] += 1
            else:
                self.overflow.add(name)

    def summary(self) -> dict[str, Any]:
        """Per parameter: its distinct values with counts, or min/max when there are many."""
        result: dict[str, Any] = {}
        for name in sorted(self.values):
            counter = self.values[name]
            distinct = len(counter) if name not in self.overflow else None
            entry: dict[str, Any] = {"generations": self.present[name],
                                     "distinct": distinct if distinct is not None else f"more than {TRACKED_VALUES}"}
            if distinct is not None and distinct <= LISTED_VALUES:
                entry["values"] = [{"value": json.loads(key), "count": count}
                                   for key, count in counter.most_common()]
            elif name in self.numbers:
                low, high = self.numbers[name]
                entry["min"], entry["max"] = _plain(low), _plain(high)
            else:
                entry["most_common"] = [{"value": json.loads(key), "count": count}
                                        for key, count in counter.most_common(LISTED_VALUES)]
            result[name] = entry
        if self.without:
            result["(no parameters logged)"] = {"generations": self.without}
        return result


def method_text(method: Any) -> str:
    """One sentence on how rows were matched, from the match report's method description."""
    if not isinstance(method, dict) or not method:
        return UNKNOWN
    if isinstance(method.get("description"), str):
        return method["description"]
    parts = []
    exact, near = method.get("exact"), method.get("near")
    if isinstance(exact, dict):
        parts.append(f"exact: {exact.get('hash', 'sha256')} of {exact.get('key', 'the response')} after "
                     f"{exact.get('normalization', 'normalization')}")
    if isinstance(near, dict):
        parts.append(f"near: candidates by {near.get('candidates', UNKNOWN)}, scored by {near.get('score', UNKNOWN)}, "
                     f"traced-near from a score of {near.get('threshold', UNKNOWN)}")
    return "; ".join(parts) or json.dumps(method, sort_keys=True, default=str)


def _plain(number: float) -> int | float:
    return int(number) if float(number).is_integer() else number


def _load(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def installed_version(package: str) -> str:
    """The installed version of a distribution, or "unknown"."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return UNKNOWN


def model_label(model: dict[str, Any]) -> str:
    """A model entry as "name (GGUF sha256 ...)", or for a proxied engine's model "name (how: value)"."""
    identity = model.get("identity")
    if isinstance(identity, dict):
        return f"{model['name']} ({METHOD_TEXT.get(str(identity.get('method')), identity.get('method'))}: {identity.get('value')})"
    return f"{model['name']} (GGUF sha256 {model['sha256']})"


def _identity_key(meta: Any, identities: dict[str, dict[str, Any]]) -> str | None:
    """A model key for a row without a GGUF sha256 whose model an engine identified another way
    (a proxied row's meta.proxy.identity: "method:value"); None when the row has no such identity."""
    proxy = meta.get("proxy") if isinstance(meta, dict) else None
    identity = proxy.get("identity") if isinstance(proxy, dict) else None
    if not isinstance(identity, dict) or not identity.get("method") or not identity.get("value"):
        return None
    key = f"{identity['method']}:{identity['value']}"
    identities.setdefault(key, {"method": str(identity["method"]), "value": str(identity["value"]),
                                "verified": bool(identity.get("verified")), "upstream": proxy.get("upstream")})
    return key


def _model_entries(db: Any, per_model: Counter[str], names: dict[str, str],
                   identities: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One entry per model, with `identified_by`: how the rows' model is known (GGUF_SHA256_METHOD
    for a file hash; an engine's digest, key or reported name for proxied rows, under `identity`)."""
    identities = identities or {}
    models: list[dict[str, Any]] = []
    for model_key, count in per_model.most_common():
        identity = identities.get(model_key)
        sha = UNKNOWN if identity else model_key
        row = None
        if sha != UNKNOWN:
            cursor = db.execute("SELECT sha256, file_name, name, architecture, quantization, size_label, license, "
                                "base_model, context_length FROM models WHERE sha256 = ?", [sha])
            found = cursor.fetchone()
            row = dict(zip([d[0] for d in cursor.description], found)) if found else None
        entry = {"sha256": sha, "generations": count, "registered": row is not None,
                 "metadata_covered_by_chain": False}
        for key in ("name", "file_name", "architecture", "quantization", "size_label", "license", "base_model",
                    "context_length"):
            value = row.get(key) if row else None
            entry[key] = value if value not in (None, "") else UNKNOWN
        if entry["name"] == UNKNOWN and names.get(model_key):
            entry["name"] = names[model_key]
        entry["identified_by"] = identity["method"] if identity else (GGUF_SHA256_METHOD if sha != UNKNOWN else UNKNOWN)
        if identity:
            entry["identity"] = identity
        models.append(entry)
    return models


def _backend_key(runtime: dict[str, Any]) -> str:
    """A row's CPU path as one line (ISA variant, extra buffer types, AMX avoided), or '' if not logged."""
    backend = runtime.get("cpu_backend")
    if not isinstance(backend, dict):
        return ""
    return json.dumps({k: backend.get(k) for k in ("isa", "build_features", "use_extra_bufts", "amx_path_avoided")},
                      sort_keys=True)


def _runtime_entry(logged: Counter[str], traced: int, backends: Counter[str] | None = None) -> dict[str, Any]:
    installed = installed_version("llama_cpp_python")
    entry: dict[str, Any] = {"llama_cpp_python_installed": installed,
                             "llama_cpp": "the llama.cpp bundled with llama-cpp-python"}
    if logged:
        entry["llama_cpp_python_logged"] = [{"version": v, "generations": n} for v, n in logged.most_common()]
        entry["source"] = "logged with each generation"
        missing = traced - sum(logged.values())
        if missing:
            entry["not_logged"] = missing
    else:
        entry["source"] = "not logged with the generations; the version installed when the statement was made"
    if backends:
        entry["cpu_backends"] = [json.loads(key) | {"generations": n} for key, n in backends.most_common() if key]
        unknown = backends.get("", 0) + traced - sum(backends.values())
        if unknown:
            entry["cpu_backend_not_logged"] = unknown
    return entry


def _screening(ledger_path: Path, workflows: list[str], encoder: Encoder | None,
               cancel: CancelToken) -> Generator[Progress, None, dict[str, Any]]:
    """Run the audit's incremental generator over the traced workflows; its per-pattern levels."""
    from app.core.audit.embeddings import Encoder
    from app.core.audit.patterns import load_library
    from app.core.audit.run import run_audit

    library = load_library()
    encoder = encoder or Encoder()
    db = open_db(ledger_path)
    try:
        result = yield from map_progress(run_audit(db, encoder, library, workflows or None, cancel),
                                         lambda item: Progress(f"screening: {item.stage}", item.done, item.total))
    finally:
        db.close()
    if result is None:
        raise StatementError("the screening was cancelled")
    return {
        "status": "run", "library_version": result.library_version, "library_hash": result.library_hash,
        "embedding_model": result.embedding_model,
        "workflows": [{
            "name": wf.name, "generations": wf.generations,
            "levels": {verdict.id: verdict.level for verdict in wf.patterns},
            "resemblances": [{"pattern": v.id, "name": v.name, "level": v.level, "hits": v.hits,
                              "reasons": v.reasons[:3]} for v in wf.patterns if v.level != "none"],
        } for wf in result.workflows],
    }


def iter_statement(report: MatchReport, ledger_path: Path | str, declared: Declared, *,
                   cancel: CancelToken = NEVER, screen: bool = True,
                   encoder: Encoder | None = None) -> Generator[Progress, None, dict[str, Any]]:
    """Collect the statement's content; yields Progress (stage: traced, verify, screening: ...;
    total None when unknown), returns the predicate dict.

    Runs on the caller's thread (CLI or a worker). `screen=False` leaves the audit out and says so.
    Raises StatementError when the ledger is missing or the work is cancelled.
    """
    ledger_path = Path(ledger_path)
    if not ledger_path.exists():
        raise StatementError(f"{ledger_path}: no ledger database here")
    db = open_db(ledger_path, readonly=True)
    try:
        ids = list(report.traced_ids)
        params, per_model = ParamSummary(), Counter[str]()
        names: dict[str, str] = {}
        identities: dict[str, dict[str, Any]] = {}  # model key -> how a proxied row's model was identified
        runtimes, workflows, sources = Counter[str](), Counter[str](), Counter[str]()
        backends = Counter[str]()
        first = last = None
        hashes: list[str] = []
        found_ids: list[int] = []
        for start in range(0, len(ids), FETCH_CHUNK):
            if cancel.cancelled:
                raise StatementError("the statement was cancelled")
            chunk = ids[start:start + FETCH_CHUNK]
            marks = ",".join("?" for _ in chunk)
            with translate_errors(ledger_path):
                rows = db.execute(f"SELECT id, row_hash, model_sha256, model_name, params, runtime, started_at, "
                                  f"workflow, source, meta FROM generations WHERE id IN ({marks}) ORDER BY id",
                                  chunk).fetchall()
            for gid, rhash, sha, model_name, raw_params, raw_runtime, started, workflow, source, meta in rows:
                found_ids.append(gid)
                hashes.append(rhash or "")
                key = sha or _identity_key(_load(meta), identities) or UNKNOWN
                per_model[key] += 1
                if key != UNKNOWN and model_name:
                    names.setdefault(key, model_name)
                params.add(_load(raw_params))
                runtime = _load(raw_runtime)
                if isinstance(runtime, dict) and runtime.get("llama_cpp_python"):
                    runtimes[str(runtime["llama_cpp_python"])] += 1
                    backends[_backend_key(runtime)] += 1
                workflows[workflow or NO_WORKFLOW] += 1
                sources[source or UNKNOWN] += 1
                if started:
                    first = started if first is None or started < first else first
                    last = started if last is None or started > last else last
            yield Progress("traced", min(len(ids), start + FETCH_CHUNK), len(ids))
        missing = len(ids) - len(found_ids)
        models = _model_entries(db, per_model, names, identities)
        ledger = Ledger(db, ledger_path)
        head_id, head_hash, head_rows = ledger.head()
        verified = yield from ledger.iter_verify(cancel)
        if verified is None:
            raise StatementError("the statement was cancelled")
    finally:
        db.close()
    if verified.ok:
        remember(ledger_path, head_id, head_hash, why="put in a provenance statement")
    screening: dict[str, Any] = {"status": "not run", "reason": "screening was switched off"}
    if screen and found_ids:
        screening = yield from _screening(ledger_path, sorted(workflows), encoder, cancel)
        screening["covered_by_chain"] = False
    elif screen:
        screening = {"status": "not run", "reason": "no dataset row was traced to the ledger"}
    total = report.rows or 0
    shares = {status: (round(count / total, 6) if total else 0.0) for status, count in report.counts.items()}
    shape = report.shape
    return {
        "statement_version": STATEMENT_VERSION,
        "created_at": utc_now_iso(),
        "generator": {"name": "Stillroom", "version": __version__},
        "dataset": {
            "name": report.dataset_name, "sha256": report.dataset_sha256, "size_bytes": report.dataset_size,
            "format": shape.file_format, "shape": shape.kind, "fields": dict(shape.fields),
            "columns": list(shape.columns), "column_types": dict(shape.column_types),
            "container": getattr(shape, "container", ""), "delimiter": getattr(shape, "delimiter", ","),
            "rows": report.rows, "malformed_rows": report.malformed,
        },
        "declared": declared.as_dict(),
        "matching": {"counts": dict(report.counts), "shares": shares, "method": report.method,
                     "exact_normalization": NORMALIZATION},
        "models": models,
        "runtime": _runtime_entry(runtimes, len(found_ids), backends),
        "sampling": params.summary(),
        "timeframe": {"first_generation": first, "last_generation": last},
        "workflows": [{"name": name, "generations": count} for name, count in workflows.most_common()],
        "sources": dict(sources.most_common()),
        "ledger": {"file_name": ledger_path.name, "head_id": head_id, "head_hash": head_hash,
                   "rows": head_rows, "verified": verified.ok, "verify_problem": verified.problem,
                   "verified_at": utc_now_iso()},
        "screening": screening,
        "coverage": COVERAGE,
        "traced": {"count": len(found_ids), "missing_from_ledger": missing, "ids": encode_ids(found_ids),
                   "row_hash_prefixes": hash_prefixes(hashes), "prefix_bytes": HASH_PREFIX_BYTES,
                   "digest": traced_digest(zip(found_ids, hashes))},
    }


def build_statement(report: MatchReport, ledger_path: Path | str, declared: Declared, *,
                    cancel: CancelToken = NEVER, screen: bool = True, encoder: Encoder | None = None) -> dict[str, Any]:
    """The statement's predicate content (drives iter_statement to its end)."""
    return drive(iter_statement(report, ledger_path, declared, cancel=cancel, screen=screen, encoder=encoder))


__all__ = ["Declared", "StatementError", "build_statement", "iter_statement",
           "NOT_DECLARED", "UNKNOWN"]
