"""The audit end to end: hand-written workflows sent through the real local server by the real
`openai` client (so they are logged exactly as a user's script would log them), then audited by the
real `stillroom audit --json` command on real embeddings.

Each pattern's workflow must reach at least `medium` on its own pattern, and ordinary use (coding
help, tutoring, creative writing, translation, ...) must stay at `low` or below on every pattern,
even though everything arrives at machine speed. Short answers (max_tokens=4) keep the model's share
of the time small; not max_tokens=1, which is itself a harvesting cue (a first version of this test
used it for every workflow, and the audit rightly put all ordinary use at `medium` logprob
harvesting). The logprob workflow asks for one token and its log-probabilities, as a harvester would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from app.core.audit.levels import LEVELS
from app.core.serve.server import WORKFLOW_HEADER
from app.core.store import Ledger
from tests.conftest import make_home, running_server
from tests.core.audit_workflows import BENIGN_WORKFLOWS, PATTERN_WORKFLOWS, TOPICS

REPO = Path(__file__).resolve().parents[2]
LOGPROB_PROMPTS = [f"Is this review of a book about {t} positive or negative? 'I could not put it down.' "
                   f"Answer:" for t in TOPICS]

ANSWER_TOKENS = 4

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory, model_store: Path) -> Iterator[dict]:
    home = make_home(tmp_path_factory.mktemp("audit-server") / "home", model_store)
    with running_server(home, n_ctx=512) as (server, ledger_file):
        client = openai.OpenAI(base_url=server.url, api_key="not-needed-on-loopback", max_retries=0, timeout=120)
        for pid, prompts in PATTERN_WORKFLOWS.items():
            for prompt in prompts:
                client.chat.completions.create(
                    model="default", messages=[{"role": "user", "content": prompt}], max_tokens=ANSWER_TOKENS,
                    temperature=0, extra_headers={WORKFLOW_HEADER: f"pattern:{pid}"})
        for prompt in LOGPROB_PROMPTS:
            client.completions.create(model="default", prompt=prompt, max_tokens=1, logprobs=5, temperature=0,
                                      extra_headers={WORKFLOW_HEADER: "pattern:logprob_harvest"})
        for name, prompts in BENIGN_WORKFLOWS.items():
            for prompt in prompts:
                client.chat.completions.create(
                    model="default", messages=[{"role": "user", "content": prompt}], max_tokens=ANSWER_TOKENS,
                    temperature=0, extra_headers={WORKFLOW_HEADER: f"benign:{name}"})
    env = {**os.environ, "STILLROOM_HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "app", "audit", "--json"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    yield {"report": json.loads(done.stdout), "ledger": ledger_file}


def levels(report: dict, workflow: str) -> dict[str, str]:
    found = next(w for w in report["workflows"] if w["name"] == workflow)
    return {pattern["id"]: pattern["level"] for pattern in found["patterns"]}


def test_every_request_was_logged_by_the_server(audited: dict) -> None:
    ledger = Ledger.open(audited["ledger"])
    try:
        expected = (sum(len(p) for p in PATTERN_WORKFLOWS.values()) + len(LOGPROB_PROMPTS)
                    + sum(len(p) for p in BENIGN_WORKFLOWS.values()))
        sources = ledger.db.execute("SELECT source, count(*) FROM generations GROUP BY source").fetchall()
        assert sources == [("server", expected)]
        assert ledger.verify().ok
    finally:
        ledger.close()


@pytest.mark.parametrize("pid", [*PATTERN_WORKFLOWS, "logprob_harvest"])
def test_each_pattern_workflow_reaches_medium(audited: dict, pid: str) -> None:
    found = levels(audited["report"], f"pattern:{pid}")
    assert found[pid] in ("medium", "high"), found


@pytest.mark.parametrize("name", list(BENIGN_WORKFLOWS))
def test_ordinary_use_stays_low(audited: dict, name: str) -> None:
    found = levels(audited["report"], f"benign:{name}")
    assert all(LEVELS.index(level) <= LEVELS.index("low") for level in found.values()), found
