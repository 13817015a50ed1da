"""Responses of the two bundled models to the same public prompts, generated for real (fixed seeds,
short answers) and logged to a ledger, for the style-attribution tests.

Gemma 3 270M (base) answers as a completion; SmolLM2-135M-Instruct through its chat template. The
prompts are the WizardLM test set's instructions, then MT-Bench's first turns; the human-written
texts that must come out "unknown" are the Self-Instruct user-oriented instructions, a third source.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from app.core.generation import LogContext, run_to_end
from app.core.models.bundled import default_params
from app.core.models.chat_model import CHAT_ALIAS
from app.core.models.default_model import DEFAULT_ALIAS
from app.core.models.resolve import resolve_model
from app.core.models.runner import LoadOptions, Runner
from app.core.models.sampling import GenerationRequest
from app.core.store import Ledger

EVAL_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "eval" / "public"
WIZARDLM = EVAL_DIR / "nlpxucan__WizardLM" / "WizardLM" / "data" / "WizardLM_testset.jsonl"
MT_BENCH = EVAL_DIR / "lm-sys__FastChat" / "fastchat" / "llm_judge" / "data" / "mt_bench" / "question.jsonl"
SELF_INSTRUCT = EVAL_DIR / "yizhongw__self-instruct" / "human_eval" / "user_oriented_instructions.jsonl"
PER_MODEL = 200
MAX_TOKENS = 24
N_CTX = 512
SEED = 2026
WORKFLOWS = {DEFAULT_ALIAS: "style-gemma", CHAT_ALIAS: "style-smollm2"}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def public_prompts(limit: int = PER_MODEL) -> list[str]:
    """The prompts both models answer: WizardLM's test instructions, then MT-Bench first turns."""
    prompts = [row["Instruction"] for row in _jsonl(WIZARDLM)] + [row["turns"][0] for row in _jsonl(MT_BENCH)]
    return [" ".join(p.split())[:600] for p in prompts][:limit]


def human_texts() -> list[str]:
    """Human-written texts from a third public source (Self-Instruct's user-oriented instructions)."""
    return [row["instruction"] for row in _jsonl(SELF_INSTRUCT)]


def generate_corpus(ledger: Ledger, prompts: list[str]) -> dict[str, float]:
    """Both bundled models answer every prompt (seed SEED + i) into `ledger`; returns seconds per
    model. Resumable: prompts a model already answered in the ledger are not asked again."""
    seconds: dict[str, float] = {}
    for alias in (DEFAULT_ALIAS, CHAT_ALIAS):
        done = ledger.db.execute("SELECT count(*) FROM generations WHERE workflow = ? AND status = 'ok'",
                                 [WORKFLOWS[alias]]).fetchone()[0]
        if done >= len(prompts):
            continue
        record = resolve_model(ledger.db, alias)
        runner = Runner()
        runner.load(record.sha256, record.info, LoadOptions(n_ctx=N_CTX, n_threads=1))
        started = time.perf_counter()
        try:
            for i, prompt in enumerate(prompts[done:], start=done):
                params = default_params(record.info.file_name, max_tokens=MAX_TOKENS, seed=SEED + i)
                if alias == CHAT_ALIAS:
                    request = GenerationRequest("chat", messages=[{"role": "user", "content": prompt}], params=params)
                else:
                    request = GenerationRequest("completion", prompt=f"{prompt}\n", params=params)
                run_to_end(runner, ledger, request, LogContext("cli", workflow=WORKFLOWS[alias]))
        finally:
            runner.unload()
        seconds[alias] = time.perf_counter() - started
    return seconds
