"""An agent framework a user would run (the OpenAI Agents SDK), offline against the local server:
a two-step tool-using task completes through Stillroom, and every step is a ledger row filed under
the workflow of the API key the agent used."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import openai
from agents import Agent, ModelSettings, OpenAIChatCompletionsModel, RunContextWrapper, Runner, function_tool
from agents import set_tracing_disabled

from app.core.serve.api_keys import create_key
from app.core.store import open_db
from tests.conftest import make_home, running_server
from tests.e2e.test_server import rows


def test_an_agent_completes_a_two_step_tool_task_through_stillroom(tmp_path: Path, model_store: Path) -> None:
    """Step 1 must call `add` (tool_choice required: the grammar makes the call deterministic on a
    135M model); the tool then switches itself off, so step 2 answers in text from its result."""
    set_tracing_disabled(True)
    calls: list[tuple[int, int]] = []

    def still_open(context: RunContextWrapper[Any], agent: Agent[Any]) -> bool:
        return not calls

    @function_tool(is_enabled=still_open)
    def add(a: int, b: int) -> int:
        """Add two integers and return their sum."""
        calls.append((a, b))
        return a + b

    home = make_home(tmp_path / "home", model_store)
    with running_server(home) as (server, ledger_file):
        db = open_db(ledger_file)
        _, secret = create_key(db, "agent-key", "agent-run")
        db.close()
        client = openai.AsyncOpenAI(base_url=server.url, api_key=secret, max_retries=0, timeout=300)
        agent = Agent(name="calculator", instructions="Use the add tool to do sums, then give the result.",
                      tools=[add], model=OpenAIChatCompletionsModel(model="default", openai_client=client),
                      model_settings=ModelSettings(tool_choice="required", temperature=0, max_tokens=40,
                                                   parallel_tool_calls=False, extra_args={"seed": 7}))

        async def run() -> Any:
            try:
                return await Runner.run(agent, "What is 2 plus 3?", max_turns=4)
            finally:
                await client.close()

        result = asyncio.run(run())
    assert len(calls) == 1 and isinstance(result.final_output, str) and result.final_output
    logged = sorted(rows(ledger_file, workflow="agent-run"), key=lambda r: r["id"])
    assert [r["status"] for r in logged] == ["ok", "ok"]
    assert all(r["meta"]["server"]["api_key"] == "agent-key" for r in logged)
    first, second = (r["meta"]["tools"] for r in logged)
    assert first["offered"] == 1 and first["calls"] == 1 and first["choice"] == "required"
    assert second["history_calls"] == 1 and second["results"] == 1 and second["calls"] == 0
    assert logged[1]["response"] == result.final_output
    assert logged[1]["messages"][-1]["tool_call_id"] == first["call_ids"][0]

