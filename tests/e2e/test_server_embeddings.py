"""/v1/embeddings through the official `openai` client, against the real server and the bundled
sentence encoder (all-MiniLM-L6-v2): vectors, their encodings, and the ledger row of each request."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest

from app.core.embedding import vectors_sha256
from app.core.models.registry import register_model
from app.core.serve.server import StillroomServer
from app.core.store import Ledger
from tests.conftest import make_home, running_server
from tests.e2e.ledger_rows import rows
from tests.core.embedding_gguf import write_minilm_gguf

ENCODER = "all-MiniLM-L6-v2"
GGUF_EMBEDDER = "minilm-embed"  # the same weights as a BERT GGUF, run by llama.cpp
CHAT_MODEL = "SmolLM2-135M-Instruct.Q4_1"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, model_store: Path) -> Iterator[tuple[StillroomServer, Path]]:
    """The server over a data folder where the test's embedding GGUF is registered too."""
    home = make_home(tmp_path_factory.mktemp("embeddings") / "home", model_store)
    ledger = Ledger.open(home / "ledger.db")
    try:
        register_model(ledger.db, write_minilm_gguf(home / f"{GGUF_EMBEDDER}.gguf"))
    finally:
        ledger.close()
    with running_server(home) as served:
        yield served


@pytest.fixture
def client(served: tuple[StillroomServer, Path]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=served[0].url, api_key="not-needed-on-loopback", max_retries=0, timeout=120) as client:
        yield client


def test_a_string_and_a_list_are_embedded_and_logged(client: openai.OpenAI,
                                                     served: tuple[StillroomServer, Path]) -> None:
    one = client.embeddings.create(model=ENCODER, input="The cat sat on the mat.",
                                   extra_headers={"X-Stillroom-Workflow": "embed-one"})
    assert one.model == ENCODER and len(one.data) == 1 and len(one.data[0].embedding) == 384
    assert one.usage.prompt_tokens == one.usage.total_tokens > 2
    texts = ["The cat sat on the mat.", "The cat sat on the mat.", "Stock prices fell sharply today."]
    many = client.embeddings.create(model="default", input=texts,
                                    extra_headers={"X-Stillroom-Workflow": "embed-many"})
    vectors = np.array([item.embedding for item in many.data], dtype=np.float32)
    assert [item.index for item in many.data] == [0, 1, 2] and vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] == pytest.approx(1.0, abs=1e-5)  # identical inputs, normalized vectors
    assert vectors[0] @ vectors[2] < 0.5
    assert np.allclose(vectors[0], one.data[0].embedding, atol=1e-6)

    row = rows(served[1], "embed-many")[0]
    assert row["source"] == "server" and row["mode"] == "embedding" and row["status"] == "ok"
    assert row["prompt"] == "\n".join(texts) and row["response"] is None
    assert row["model_name"] == "sentence-transformers/all-MiniLM-L6-v2" and len(row["model_sha256"]) == 64
    assert row["prompt_tokens"] == many.usage.prompt_tokens
    meta = row["meta"]
    assert meta["server"]["api"] == "embeddings" and meta["server"]["endpoint"] == "/v1/embeddings"
    assert meta["embedding"] == {"input_chars": [len(t) for t in texts], "count": 3, "dimensions": 384,
                                 "vectors_sha256": vectors_sha256(vectors)}
    assert row["params"]["encoding_format"] == "base64"  # what the openai client asks for, then decodes


def test_base64_is_the_float32_bytes_of_the_same_vector(client: openai.OpenAI) -> None:
    floats = client.embeddings.create(model=ENCODER, input="Rivers run to the sea.", encoding_format="float")
    raw = client.with_raw_response.embeddings.create(model=ENCODER, input="Rivers run to the sea.",
                                                      encoding_format="base64").http_response.json()
    decoded = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, floats.data[0].embedding, atol=1e-6)
    assert client.embeddings.create(model=ENCODER, input="x y z", dimensions=384).data  # its own size is fine


def test_models_lists_the_encoder_as_an_embedding_model(client: openai.OpenAI) -> None:
    entry = next(m for m in client.models.list().data if m.id == ENCODER)
    assert entry.model_extra["stillroom"]["kind"] == "embedding"
    assert entry.model_extra["stillroom"]["dimensions"] == 384


def test_every_embedding_row_keeps_the_chain(served: tuple[StillroomServer, Path], client: openai.OpenAI) -> None:
    client.embeddings.create(model=ENCODER, input=["a", "b"])
    ledger = Ledger.open(served[1])
    try:
        assert ledger.verify().ok
    finally:
        ledger.close()


def test_an_embedding_gguf_is_run_by_llama_cpp_on_the_model_thread(client: openai.OpenAI,
                                                                    served: tuple[StillroomServer, Path]) -> None:
    """The GGUF conversion of the same weights gives the same vectors as sentence-transformers
    (cosine above 0.999), its row names the GGUF, and a chat request afterwards switches back."""
    entry = next(m for m in client.models.list().data if m.id == GGUF_EMBEDDER)
    assert entry.model_extra["stillroom"]["kind"] == "embedding"
    assert entry.model_extra["stillroom"]["dimensions"] == 384
    texts = ["The cat sat on the mat.", "Stock prices fell sharply today."]
    gguf = client.embeddings.create(model=GGUF_EMBEDDER, input=texts, extra_headers={"X-Stillroom-Workflow": "gguf"})
    encoder = client.embeddings.create(model=ENCODER, input=texts)
    assert gguf.model == GGUF_EMBEDDER and gguf.usage.prompt_tokens == encoder.usage.prompt_tokens
    for mine, theirs in zip(gguf.data, encoder.data):
        assert np.dot(mine.embedding, theirs.embedding) > 0.999
    row = rows(served[1], "gguf")[0]
    assert row["mode"] == "embedding" and row["model_sha256"] == entry.model_extra["stillroom"]["sha256"]
    assert row["runtime"]["llama_cpp_python"] and row["meta"]["embedding"]["count"] == 2
    chat = client.chat.completions.create(model=CHAT_MODEL, max_tokens=2, messages=[{"role": "user", "content": "Hi"}])
    assert chat.choices[0].message.content is not None and served[0].model_host.loaded.info.architecture == "llama"


def test_an_embedding_gguf_refuses_chat_and_texts_longer_than_it_reads(client: openai.OpenAI,
                                                                       served: tuple[StillroomServer, Path]) -> None:
    with pytest.raises(openai.BadRequestError, match="embeds text"):
        client.chat.completions.create(model=GGUF_EMBEDDER, max_tokens=2, messages=[{"role": "user", "content": "Hi"}])
    with pytest.raises(openai.BadRequestError, match=r"input\[0\] is \d+ tokens long"):
        client.embeddings.create(model=GGUF_EMBEDDER, input="word " * 600,
                                 extra_headers={"X-Stillroom-Workflow": "gguf-too-long"})
    row = rows(served[1], "gguf-too-long")[0]
    assert row["status"] == "error" and "at most 512 tokens" in row["error"]
