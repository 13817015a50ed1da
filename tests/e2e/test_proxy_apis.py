"""The proxy in front of an engine that speaks the Responses and Messages APIs too (Stillroom's own
`stillroom serve`, a real server with the bundled model), driven by the official `openai` and
`anthropic` clients: their answers pass through, and the proxy's rows read the text out of each
API's shape, whole and streamed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from app.core.proxy.server import ProxyServer
from app.core.serve.server import WORKFLOW_HEADER
from app.core.store import Ledger
from tests.conftest import make_home, running_server
from tests.e2e.ledger_rows import rows


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory, model_store: Path) -> Iterator[tuple[ProxyServer, Path]]:
    home = make_home(tmp_path_factory.mktemp("engine") / "home", model_store)
    with running_server(home, n_ctx=512) as (engine, _engine_ledger):
        ledger_file = tmp_path_factory.mktemp("proxy") / "ledger.db"
        Ledger.open(ledger_file).close()
        server = ProxyServer(ledger_file, [engine.url], port=0)
        server.start()
        try:
            yield server, ledger_file
        finally:
            server.stop()


def test_responses_whole_and_streamed(proxied: tuple[ProxyServer, Path]) -> None:
    server, ledger_file = proxied
    with openai.OpenAI(base_url=server.url, api_key="x", max_retries=0, timeout=120) as client:
        whole = client.responses.create(model="default", input="Name a colour.", max_output_tokens=8,
                                        instructions="Be brief.", extra_headers={WORKFLOW_HEADER: "resp"})
        stream = client.responses.create(model="default", input="Name a fruit.", max_output_tokens=8, stream=True,
                                         extra_headers={WORKFLOW_HEADER: "resp"})
        streamed = "".join(event.delta for event in stream if event.type == "response.output_text.delta")
    first, second = sorted(rows(ledger_file, "resp"), key=lambda row: row["id"])
    assert whole.output_text and first["response"] == whole.output_text
    assert first["system_prompt"] == "Be brief." and first["prompt"] == "Name a colour."
    assert first["finish_reason"] in ("completed", "incomplete") and first["completion_tokens"] >= 1
    assert streamed and second["response"] == streamed and second["meta"]["proxy"]["stream"] is True


def test_messages_whole_and_streamed(proxied: tuple[ProxyServer, Path]) -> None:
    server, ledger_file = proxied
    with anthropic.Anthropic(base_url=server.url.removesuffix("/v1"), api_key="x", max_retries=0,
                             timeout=120) as client:
        message = client.messages.create(model="default", max_tokens=8, system="Be brief.",
                                         messages=[{"role": "user", "content": "Name a colour."}],
                                         extra_headers={WORKFLOW_HEADER: "msgs"})
        with client.messages.stream(model="default", max_tokens=8,
                                    messages=[{"role": "user", "content": "Name a fruit."}],
                                    extra_headers={WORKFLOW_HEADER: "msgs"}) as stream:
            streamed = "".join(stream.text_stream)
            final = stream.get_final_message()
    first, second = sorted(rows(ledger_file, "msgs"), key=lambda row: row["id"])
    assert first["response"] == message.content[0].text and first["system_prompt"] == "Be brief."
    assert first["finish_reason"] == message.stop_reason
    assert first["prompt_tokens"] == message.usage.input_tokens
    assert streamed and second["response"] == streamed and second["finish_reason"] == final.stop_reason
