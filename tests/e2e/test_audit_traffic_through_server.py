"""Harder traffic end to end: a harvest diluted in one 'default' workflow, a sweep from several
wrappers over a grid, and a templated classification batch, sent through the real local server by
the real `openai` client (everything at machine speed, so time alone separates nothing), then
audited by the real `stillroom audit --json` command. The harvest is reported as its group, the
sweep is one sweep that raises nothing else, and the batch stays low with no workflow-level claim."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from app.core.serve.server import WORKFLOW_HEADER
from tests.conftest import make_home, running_server
from tests.core import audit_traffic as traffic

REPO = Path(__file__).resolve().parents[2]
ANSWER_TOKENS = 4

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, model_store: Path) -> Iterator[dict]:
    home = make_home(tmp_path_factory.mktemp("audit-traffic") / "home", model_store)
    sent = {"default": traffic.diluted_harvest(), "sweep": traffic.multi_template_sweep(),
            "classification": traffic.templated_batch("classification")}
    with running_server(home, n_ctx=512) as (server, _ledger_file):
        client = openai.OpenAI(base_url=server.url, api_key="not-needed-on-loopback", max_retries=0, timeout=120)
        for workflow, rows in sent.items():
            for row in rows:
                client.chat.completions.create(
                    model="default", messages=[{"role": "user", "content": row["prompt"]}],
                    max_tokens=ANSWER_TOKENS, temperature=0, extra_headers={WORKFLOW_HEADER: workflow})
    env = {**os.environ, "STILLROOM_HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "app", "audit", "--json"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    yield json.loads(done.stdout)


def workflow(report: dict, name: str) -> dict:
    return next(w for w in report["workflows"] if w["name"] == name)


def test_the_diluted_harvest_is_reported_as_its_group(report: dict) -> None:
    default = workflow(report, "default")
    groups = [g for g in default["substreams"] if g["pattern"] == "cot_exfiltration"]
    assert groups and groups[0]["level"] == "medium" and groups[0]["hits"] >= 15, default["substreams"]
    assert f"of {default['generations']} requests in \u2018default\u2019" in groups[0]["summary"]
    verdicts = {p["id"]: p for p in default["patterns"]}
    assert verdicts["cot_exfiltration"]["level"] == "medium"
    assert all(p["level"] in ("none", "low") for pid, p in verdicts.items() if pid != "cot_exfiltration")


def test_the_sweep_is_one_sweep_and_raises_nothing_else(report: dict) -> None:
    sweep = workflow(report, "sweep")
    levels = {p["id"]: p["level"] for p in sweep["patterns"]}
    assert levels.pop("templated_sweep") in ("medium", "high")
    assert all(level in ("none", "low") for level in levels.values()), levels
    assert sweep["signals"]["grid_cells"] >= 24


def test_the_templated_classification_batch_stays_low_with_no_workflow_claim(report: dict) -> None:
    batch = workflow(report, "classification")
    for pattern in batch["patterns"]:
        assert pattern["level"] in ("none", "low"), pattern
        assert set(pattern["workflow_cues"]) <= ({"template_reuse"} if pattern["id"] == "templated_sweep" else set())
