"""How the proxy identifies the model behind an engine, from answers shaped as each engine documents
them (tests/fixtures/proxy/SOURCES.md), served over real HTTP by an in-memory responder. Ollama,
LM Studio and llama.cpp's `llama-server` themselves are not run here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.hashing import sha256_file
from app.core.models.chat_model import chat_model_path
from app.core.proxy.identity import GGUF_SHA256, LMSTUDIO_KEY, OLLAMA_DIGEST, REPORTED_NAME
from app.core.proxy.upstreams import Upstream, UpstreamPool, parse_upstream
from app.core.errors import StillroomError
from tests.e2e.memory_responder import memory_responder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "proxy"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def hash_any(path: Path) -> str | None:
    return sha256_file(path) if path.is_file() else None


def probed(routes: dict[tuple[str, str], bytes]) -> Upstream:
    with memory_responder(routes) as (url, _):
        upstream = Upstream(url, hash_any)
        upstream.refresh(force=True)
    return upstream


def test_ollama_models_are_identified_by_their_digest_with_details() -> None:
    upstream = probed({("GET", "/api/tags"): fixture("ollama_tags.json"),
                       ("POST", "/api/show"): fixture("ollama_show.json")})
    found = upstream.identities["deepseek-r1:latest"]
    assert (found.method, found.verified) == (OLLAMA_DIGEST, False)
    assert found.value == "0a8c266910232fd3291e71e5ba1e058cc5af9d411192cf88b6d30e92b6e73163"
    assert found.details["details"]["quantization_level"] == "Q4_0"  # /api/show's details win
    assert upstream.identities["llama3.2"].value.startswith("a80c4f17")  # ':latest' may be left out
    assert upstream.identity("memory-model").method == REPORTED_NAME  # from /v1/models: the name only


def test_lmstudio_models_are_identified_by_their_key() -> None:
    upstream = probed({("GET", "/api/v0/models"): fixture("lmstudio_models.json")})
    found = upstream.identities["meta-llama-3.1-8b-instruct"]
    assert (found.method, found.value, found.verified) == (LMSTUDIO_KEY, "meta-llama-3.1-8b-instruct", False)
    assert found.details["quantization"] == "Q4_K_M" and found.details["publisher"] == "lmstudio-community"
    assert len([i for i in upstream.identities.values() if i.method == LMSTUDIO_KEY]) == 3


def test_llama_server_props_give_the_file_sha256_when_the_file_is_here() -> None:
    props = json.loads(fixture("llamacpp_props.json"))
    far = probed({("GET", "/props"): json.dumps(props).encode()})
    elsewhere = far.identities["Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf"]
    assert (elsewhere.method, elsewhere.verified) == (REPORTED_NAME, False)  # a path not readable here
    local = str(chat_model_path())
    near = probed({("GET", "/props"): json.dumps(props | {"model_path": local}).encode()})
    for name in (local, Path(local).name, Path(local).stem):
        found = near.identities[name]
        assert (found.method, found.value, found.verified) == (GGUF_SHA256, sha256_file(local), True)
        assert found.sha256 == found.value


def test_an_unknown_name_is_recorded_as_reported_and_unverified() -> None:
    upstream = probed({})
    found = upstream.identity("some-vllm-model")
    assert (found.method, found.value, found.verified, found.sha256) == (REPORTED_NAME, "some-vllm-model", False, None)


@pytest.mark.parametrize("url, expected", [
    ("http://localhost:11434/v1", "http://localhost:11434/v1"),
    ("http://localhost:1234", "http://localhost:1234/v1"),
    ("http://[::1]:8000/v1/", "http://[::1]:8000/v1"),
    ("https://gpu-box.example/serve/v1", "https://gpu-box.example:443/serve/v1"),
])
def test_upstream_urls_are_read_with_or_without_v1(url: str, expected: str) -> None:
    assert parse_upstream(url).url == expected


@pytest.mark.parametrize("url", ["localhost:11434", "ftp://x/v1", "http://u:p@host/v1", "http:///v1"])
def test_bad_upstream_urls_are_refused(url: str) -> None:
    with pytest.raises(StillroomError):
        parse_upstream(url)


def test_a_pool_needs_an_upstream_and_no_twice() -> None:
    with pytest.raises(StillroomError, match="at least one"):
        UpstreamPool([], hash_any)
    with pytest.raises(StillroomError, match="twice"):
        UpstreamPool(["http://a:1/v1", "http://a:1"], hash_any)
