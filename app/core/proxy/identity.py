"""Which model an upstream engine serves, as precisely as the engine lets us know, and how we know.

Each engine reveals something different:
- llama.cpp's `llama-server`: GET /props names the GGUF file it loaded (`model_path`); when that
  file is readable here, its sha256 identifies the model exactly (method "gguf-sha256").
- llama-cpp-python's server: GET /v1/models reports the file's path as the id when no alias was
  given; a path readable here is hashed the same way (method "gguf-sha256").
- Ollama: GET /api/tags lists every model with its digest (method "ollama-digest"); POST /api/show
  adds the details (family, parameter size, quantization).
- LM Studio: GET /api/v0/models lists every model under its key (method "lmstudio-key").
- Anything else (vLLM, Ray Serve, ...): the name /v1/models reports (method "reported-name"),
  which nothing verifies.
Probing only reads; a probe that fails just means the engine is not that kind.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)
GGUF_SHA256 = "gguf-sha256"
OLLAMA_DIGEST = "ollama-digest"
LMSTUDIO_KEY = "lmstudio-key"
REPORTED_NAME = "reported-name"
METHOD_TEXT = {
    GGUF_SHA256: "sha256 of the GGUF file the engine loaded",
    OLLAMA_DIGEST: "Ollama's model digest",
    LMSTUDIO_KEY: "LM Studio's model key",
    REPORTED_NAME: "the name the engine reports (unverified)",
}
MAX_LISTED = 500  # models kept per upstream listing
MAX_NAME_CHARS = 512

# fetch(method, path, body) -> (status, parsed JSON or None); paths are relative to the engine's root
Fetch = Callable[[str, str, Any], tuple[int, Any]]


@dataclass(frozen=True)
class ModelIdentity:
    """A model an upstream serves: the name clients use, how it was identified and the identifying
    value (a sha256, a digest, a key or the name itself). `verified` is True only for a file hash."""

    name: str
    method: str
    value: str
    verified: bool
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def sha256(self) -> str | None:
        """The GGUF sha256 when the model was identified by its file, else None."""
        return self.value if self.method == GGUF_SHA256 else None

    def as_meta(self) -> dict[str, Any]:
        """What a ledger row records of the identity (meta.proxy.identity)."""
        return {"name": self.name, "method": self.method, "value": self.value, "verified": self.verified,
                "details": self.details or None}


def reported(name: str) -> ModelIdentity:
    """A model known only by the name the engine reports."""
    name = _clip(name)
    return ModelIdentity(name, REPORTED_NAME, name, False)


def probe(fetch: Fetch, hash_file: Callable[[Path], str | None]) -> dict[str, ModelIdentity]:
    """Every model the engine behind `fetch` serves, by the name a client gives it, identified by the
    most precise source it answers (see the module docstring). `hash_file` returns a readable file's
    sha256, or None. An engine that answers none of them gives an empty dict."""
    found: dict[str, ModelIdentity] = {}
    for source in (_from_models_list, _from_lmstudio, _from_ollama, _from_props):
        try:
            for identity in source(fetch, hash_file):
                found[identity.name] = _better(found.get(identity.name), identity)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            LOG.debug("identity source %s failed: %s", source.__name__, exc)
    return found


def _better(old: ModelIdentity | None, new: ModelIdentity) -> ModelIdentity:
    rank = [REPORTED_NAME, LMSTUDIO_KEY, OLLAMA_DIGEST, GGUF_SHA256]
    return new if old is None or rank.index(new.method) >= rank.index(old.method) else old


def _from_models_list(fetch: Fetch, hash_file: Callable[[Path], str | None]) -> list[ModelIdentity]:
    """GET /v1/models (every OpenAI-compatible engine): names, hashed when a name is a local file."""
    status, body = fetch("GET", "/v1/models", None)
    if status != 200 or not isinstance(body, dict):
        return []
    out = []
    for item in (body.get("data") or [])[:MAX_LISTED]:
        name = item.get("id") if isinstance(item, dict) else None
        if isinstance(name, str) and name:
            out.append(_hashed(name, name, hash_file, {"source": "/v1/models"}) or reported(name))
    return out


def _from_props(fetch: Fetch, hash_file: Callable[[Path], str | None]) -> list[ModelIdentity]:
    """GET /props (llama.cpp's llama-server): the loaded file's path, hashed when readable here.
    The path is under `model_path` (newer builds) or `default_generation_settings.model`."""
    status, body = fetch("GET", "/props", None)
    if status != 200 or not isinstance(body, dict):
        return []
    settings = body.get("default_generation_settings") or {}
    path = body.get("model_path") or (settings.get("model") if isinstance(settings, dict) else None)
    if not isinstance(path, str) or not path:
        return []
    details = {"source": "/props", "model_path": _clip(path)}
    names = {path, Path(path).name, Path(path).stem}
    names |= {str(a) for a in (body.get("model_alias"),) if isinstance(a, str) and a}
    hashed = _hashed(path, path, hash_file, details)
    identities = []
    for name in sorted(names):
        identities.append(ModelIdentity(_clip(name), hashed.method, hashed.value, True, details) if hashed
                          else ModelIdentity(_clip(name), REPORTED_NAME, _clip(path), False, details))
    return identities


def _from_ollama(fetch: Fetch, _hash_file: Callable[[Path], str | None]) -> list[ModelIdentity]:
    """GET /api/tags (Ollama): each model's digest; POST /api/show: its details."""
    status, body = fetch("GET", "/api/tags", None)
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("models"), list):
        return []
    out = []
    for item in body["models"][:MAX_LISTED]:
        name, digest = item.get("name") or item.get("model"), item.get("digest")
        if not (isinstance(name, str) and name and isinstance(digest, str) and digest):
            continue
        details = {"source": "/api/tags", "size": item.get("size")}
        if isinstance(item.get("details"), dict):
            details["details"] = item["details"]
        shown_status, shown = fetch("POST", "/api/show", {"model": name})
        if shown_status == 200 and isinstance(shown, dict) and isinstance(shown.get("details"), dict):
            details["details"] = shown["details"]
        names = {name} | ({name[: -len(":latest")]} if name.endswith(":latest") else set())
        out += [ModelIdentity(_clip(n), OLLAMA_DIGEST, _clip(digest), False, details) for n in sorted(names)]
    return out


def _from_lmstudio(fetch: Fetch, _hash_file: Callable[[Path], str | None]) -> list[ModelIdentity]:
    """GET /api/v0/models (LM Studio's REST API): each model's key, publisher and quantization."""
    status, body = fetch("GET", "/api/v0/models", None)
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return []
    out = []
    for item in body["data"][:MAX_LISTED]:
        key = item.get("id") if isinstance(item, dict) else None
        if not isinstance(key, str) or not key:
            continue
        details = {k: item.get(k) for k in ("publisher", "arch", "compatibility_type", "quantization", "type")
                   if item.get(k) is not None} | {"source": "/api/v0/models"}
        out.append(ModelIdentity(_clip(key), LMSTUDIO_KEY, _clip(key), False, details))
    return out


def _hashed(name: str, path: str, hash_file: Callable[[Path], str | None],
            details: dict[str, Any]) -> ModelIdentity | None:
    """The identity of a name that is a GGUF file readable here, by its sha256; else None."""
    if not path.lower().endswith(".gguf"):
        return None
    digest = hash_file(Path(path))
    if not digest:
        return None
    return ModelIdentity(_clip(name), GGUF_SHA256, digest, True, details | {"model_path": _clip(path)})


def _clip(text: str) -> str:
    return text if len(text) <= MAX_NAME_CHARS else text[:MAX_NAME_CHARS] + "..."


def parse_json(data: bytes) -> Any:
    """JSON from an engine's answer, or None when it is not JSON."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
