"""Wrong shapes and limits on /v1/embeddings, /v1/responses and /v1/messages, against the real server.

Each case gets a 4xx naming the field at fault, in the shape of the API it spoke (OpenAI's
{"error": {...}}, or Anthropic's {"type": "error", "error": {"type", "message"}} on /v1/messages),
and logs nothing, since it never reaches a model; a text longer than the encoder reads does reach
it and is logged as one error row. The official clients raise their own error types for these, and
the server keeps answering.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from app.core.serve.api_keys import create_key
from app.core.serve.embeddings_api import MAX_INPUTS, MAX_TOTAL_CHARS
from app.core.serve.server import StillroomServer
from app.core.store import Ledger, open_db
from app.core.store.queries import LogFilter, list_generations
from tests.conftest import make_home, running_server

ENCODER = "all-MiniLM-L6-v2"
CHAT_MODEL = "SmolLM2-135M-Instruct.Q4_1"
VERSION = {"anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, model_store: Path) -> Iterator[tuple[StillroomServer, Path]]:
    with running_server(make_home(tmp_path_factory.mktemp("apis") / "home", model_store), n_ctx=512) as served:
        yield served


def send(server: StillroomServer, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=120)
    try:
        connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **(headers or {})})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def row_count(ledger_file: Path) -> int:
    ledger = Ledger.open(ledger_file)
    try:
        return ledger.head()[2]
    finally:
        ledger.close()


def openai_error(answer: tuple[int, dict], status: int, param: str | None, code: str) -> str:
    assert answer[0] == status, answer
    error = answer[1]["error"]
    assert error["param"] == param and error["code"] == code, error
    return error["message"]


def anthropic_error(answer: tuple[int, dict], status: int, kind: str = "invalid_request_error") -> str:
    assert answer[0] == status, answer
    assert answer[1]["type"] == "error" and answer[1]["error"]["type"] == kind, answer[1]
    return answer[1]["error"]["message"]


EMBEDDING_CASES = [
    ({"model": ENCODER}, "input", "missing_required_parameter", "'input' is required"),
    ({"model": ENCODER, "input": [[1, 2, 3]]}, "input", "unsupported_input", "token arrays"),
    ({"model": ENCODER, "input": [1, 2, 3]}, "input", "unsupported_input", "token arrays"),
    ({"model": ENCODER, "input": []}, "input", "invalid_value", "empty list"),
    ({"model": ENCODER, "input": ["ok", ""]}, "input", "invalid_value", "input[1] is empty"),
    ({"model": ENCODER, "input": ["ok", 3]}, "input", "invalid_type", "list of strings"),
    ({"model": ENCODER, "input": {"text": "x"}}, "input", "invalid_type", "list of strings"),
    ({"model": ENCODER, "input": "\ud800"}, "input", "invalid_value", "lone surrogate"),
    ({"model": ENCODER, "input": ["x"] * (MAX_INPUTS + 1)}, "input", "too_many_inputs", f"at most {MAX_INPUTS}"),
    ({"model": ENCODER, "input": ["y" * 1000] * (MAX_TOTAL_CHARS // 1000 + 1)}, "input", "input_too_large",
     f"at most {MAX_TOTAL_CHARS}"),
    ({"model": ENCODER, "input": "x", "encoding_format": "int8"}, "encoding_format", "invalid_value", "float or base64"),
    ({"model": ENCODER, "input": "x", "dimensions": 128}, "dimensions", "unsupported_parameter", "384 dimensions"),
    ({"model": ENCODER, "input": "x", "dimensions": "384"}, "dimensions", "invalid_type", "positive integer"),
    ({"model": CHAT_MODEL, "input": "x"}, "model", "model_not_supported", "generates text"),
    ({"input": "x"}, "model", "missing_required_parameter", "'model' is required"),
]


@pytest.mark.parametrize(("body", "param", "code", "words"), EMBEDDING_CASES,
                         ids=[f"{case[2]}-{index}" for index, case in enumerate(EMBEDDING_CASES)])
def test_embeddings_refuse_wrong_shapes_and_log_nothing(served: tuple[StillroomServer, Path], body: dict, param: str,
                                                        code: str, words: str) -> None:
    before = row_count(served[1])
    assert words in openai_error(send(served[0], "/v1/embeddings", body), 400, param, code)
    assert row_count(served[1]) == before


def test_a_text_model_and_an_embedding_model_stay_on_their_endpoints(served: tuple[StillroomServer, Path]) -> None:
    answer = send(served[0], "/v1/chat/completions", {"model": ENCODER, "messages": [{"role": "user", "content": "x"}]})
    assert "embeds text" in openai_error(answer, 400, "model", "model_not_supported")
    answer = send(served[0], "/v1/messages", {"model": ENCODER, "max_tokens": 4,
                                              "messages": [{"role": "user", "content": "x"}]}, VERSION)
    assert "embeds text" in anthropic_error(answer, 400)


def test_a_text_longer_than_the_encoder_reads_is_refused_and_logged(served: tuple[StillroomServer, Path]) -> None:
    long_text = "word " * 400
    answer = send(served[0], "/v1/embeddings", {"model": ENCODER, "input": ["short", long_text]},
                  {"X-Stillroom-Workflow": "embed-too-long"})
    message = openai_error(answer, 400, "input", "context_length_exceeded")
    assert "input[1]" in message and "at most 256 tokens" in message
    db = open_db(served[1], readonly=True)
    try:
        logged = list_generations(db, LogFilter(workflow="embed-too-long"), limit=None)
    finally:
        db.close()
    assert len(logged) == 1 and logged[0]["status"] == "error" and logged[0]["mode"] == "embedding"
    assert "input[1]" in logged[0]["error"]


RESPONSES_CASES = [
    ({"model": "default"}, "input", "missing_required_parameter"),
    ({"model": "default", "input": 42}, "input", "invalid_type"),
    ({"model": "default", "input": []}, "input", "invalid_type"),
    ({"model": "default", "input": "hi", "previous_response_id": "resp_1"}, "previous_response_id",
     "unsupported_parameter"),
    ({"model": "default", "input": [{"role": "robot", "content": "hi"}]}, "input[0].role", "invalid_value"),
    ({"model": "default", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
     "input[0].content[0]", "unsupported_content"),
    ({"model": "default", "input": [{"type": "reasoning", "summary": []}]}, "input[0].type", "unsupported_input"),
    ({"model": "default", "input": [{"type": "function_call_output", "output": "3"}]}, "input[0].call_id",
     "invalid_value"),
    ({"model": "default", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]},
     "input[0].arguments", "invalid_type"),
    ({"model": "default", "input": "hi", "tools": [{"type": "web_search"}]}, "tools[0].type", "unsupported_tool"),
    ({"model": "default", "input": "hi", "tool_choice": "sometimes"}, "tool_choice", "invalid_value"),
    ({"model": "default", "input": "hi", "max_output_tokens": 0}, "max_output_tokens", "invalid_value"),
    ({"model": "default", "input": "hi", "instructions": ["be brief"]}, "instructions", "invalid_type"),
    ({"model": "default", "input": "hi", "text": {"format": {"type": "json_schema"}}}, "text.format.schema",
     "invalid_value"),
    ({"model": "default", "input": "hi", "temperature": 5}, "temperature", "invalid_value"),
    ({"model": "no-such-model", "input": "hi"}, "model", "model_not_found"),
]


@pytest.mark.parametrize(("body", "param", "code"), RESPONSES_CASES,
                         ids=[f"{case[2]}-{index}" for index, case in enumerate(RESPONSES_CASES)])
def test_responses_refuse_wrong_shapes_naming_the_field(served: tuple[StillroomServer, Path], body: dict, param: str,
                                                        code: str) -> None:
    before = row_count(served[1])
    status = 404 if code == "model_not_found" else 400
    assert param in openai_error(send(served[0], "/v1/responses", body), status, param, code) or param == "model"
    assert row_count(served[1]) == before


MESSAGE = [{"role": "user", "content": "hi"}]
MESSAGES_CASES = [
    ({"model": "default", "messages": MESSAGE}, "'max_tokens' is required"),
    ({"model": "default", "max_tokens": 0, "messages": MESSAGE}, "'max_tokens' must be a positive integer"),
    ({"model": "default", "max_tokens": 4}, "'messages' must be a non-empty list"),
    ({"model": "default", "max_tokens": 4, "messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
    ({"model": "default", "max_tokens": 4, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": ""}}]}]},
     "messages[0].content[0]"),
    ({"model": "default", "max_tokens": 4, "messages": [{"role": "assistant", "content": [
        {"type": "tool_result", "tool_use_id": "t", "content": "3"}]}]}, "messages[0].content[0]"),
    ({"model": "default", "max_tokens": 4, "messages": [{"role": "user", "content": [
        {"type": "tool_result", "content": "3"}]}]}, "tool_use_id"),
    ({"model": "default", "max_tokens": 4, "messages": [{"role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "f", "input": "not an object"}]}]}, "messages[0].content[0].input"),
    ({"model": "default", "max_tokens": 4, "messages": MESSAGE, "temperature": 1.5}, "'temperature'"),
    ({"model": "default", "max_tokens": 4, "messages": MESSAGE, "stop_sequences": "END"}, "'stop_sequences'"),
    ({"model": "default", "max_tokens": 4, "messages": MESSAGE, "system": [{"type": "image"}]}, "system[0]"),
    ({"model": "default", "max_tokens": 4, "messages": MESSAGE,
      "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
    ({"model": "default", "max_tokens": 4, "messages": MESSAGE, "tools": [{"name": "f"}]}, "tools[0].input_schema"),
    ({"model": "default", "max_tokens": 4, "messages": MESSAGE, "tool_choice": {"type": "sometimes"}}, "'tool_choice'"),
    ({"model": "default", "max_tokens": 4, "messages": MESSAGE, "thinking": {"type": "enabled", "budget_tokens": 1024}},
     "'thinking'"),
]


@pytest.mark.parametrize(("body", "words"), MESSAGES_CASES, ids=[str(index) for index in range(len(MESSAGES_CASES))])
def test_messages_refuse_wrong_shapes_in_anthropics_error_shape(served: tuple[StillroomServer, Path], body: dict,
                                                                words: str) -> None:
    before = row_count(served[1])
    assert words in anthropic_error(send(served[0], "/v1/messages", body, VERSION), 400)
    assert row_count(served[1]) == before


def test_messages_headers_and_models_in_anthropics_error_shape(served: tuple[StillroomServer, Path]) -> None:
    body = {"model": "default", "max_tokens": 4, "messages": MESSAGE}
    assert "anthropic-version" in anthropic_error(send(served[0], "/v1/messages", body), 400)
    assert "anthropic-version" in anthropic_error(send(served[0], "/v1/messages", body,
                                                       {"anthropic-version": "x" * 65}), 400)
    assert "does not exist" in anthropic_error(send(served[0], "/v1/messages", body | {"model": "claude-opus-4-1"},
                                                    VERSION), 404, "not_found_error")
    assert "revoked" in anthropic_error(send(served[0], "/v1/messages", body,
                                             VERSION | {"x-api-key": "sk-stillroom-forged"}), 401,
                                        "authentication_error")


def test_the_official_clients_raise_their_own_errors(served: tuple[StillroomServer, Path]) -> None:
    base = served[0].url
    with anthropic.Anthropic(base_url=base.removesuffix("/v1"), api_key="x", max_retries=0, timeout=60) as claude:
        with pytest.raises(anthropic.NotFoundError, match="does not exist"):
            claude.messages.create(model="claude-opus-4-1", max_tokens=4, messages=MESSAGE)
        with pytest.raises(anthropic.BadRequestError, match="only text blocks"):
            claude.messages.create(model="default", max_tokens=4, messages=MESSAGE,
                                   system=[{"type": "image"}])  # type: ignore[list-item]
    with openai.OpenAI(base_url=base, api_key="x", max_retries=0, timeout=60) as gpt:
        with pytest.raises(openai.BadRequestError, match="does not store responses"):
            gpt.responses.create(model="default", input="hi", previous_response_id="resp_123")
        with pytest.raises(openai.BadRequestError, match="token arrays"):
            gpt.embeddings.create(model=ENCODER, input=[[1, 2, 3]])


def test_an_anthropic_client_key_files_its_requests_under_the_keys_workflow(
        served: tuple[StillroomServer, Path]) -> None:
    db = open_db(served[1])
    try:
        _, secret = create_key(db, "claude-code", "agent-run")
    finally:
        db.close()
    with anthropic.Anthropic(base_url=served[0].url.removesuffix("/v1"), api_key=secret, max_retries=0,
                             timeout=120) as claude:
        claude.messages.create(model="default", max_tokens=2, messages=MESSAGE)
    db = open_db(served[1], readonly=True)
    try:
        logged = list_generations(db, LogFilter(workflow="agent-run"), limit=None)
    finally:
        db.close()
    assert len(logged) == 1 and logged[0]["meta"]["server"]["api_key"] == "claude-code"
