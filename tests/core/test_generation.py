"""The runner and generate_logged() with the real default model: streaming, logging, cancel, logprobs."""

from __future__ import annotations

import pytest

from app.core.cancel import CancelToken
from app.core.errors import StillroomError
from app.core.generation import LogContext, LoggedGeneration, generate_logged, run_to_end
from app.core.models.runner import Runner, TokenChunk
from app.core.models.sampling import GenerationRequest, SamplingParams
from app.core.store import Ledger
from app.core.store.queries import LogFilter, get_generation, list_generations
from app.core.textnorm import content_hash


def completion(prompt: str = "The capital of France is", **params: object) -> GenerationRequest:
    return GenerationRequest("completion", prompt=prompt, params=SamplingParams(**params))  # type: ignore[arg-type]


def test_completion_streams_and_logs_one_complete_row(runner: Runner, ledger: Ledger) -> None:
    request = completion(max_tokens=16, seed=11, temperature=0.7, top_k=30)
    items = list(generate_logged(runner, ledger, request, LogContext("cli", workflow="wf")))
    chunks = [i for i in items if isinstance(i, TokenChunk)]
    final = items[-1]
    assert isinstance(final, LoggedGeneration) and len(chunks) >= 2
    text = "".join(c.text for c in chunks)
    assert text == final.result.text and text.strip()
    row = get_generation(ledger.db, final.generation_id)
    assert row["response"] == text and row["status"] == "ok" and row["source"] == "cli"
    assert row["workflow"] == "wf" and row["mode"] == "completion"
    assert row["model_sha256"] == runner.loaded.sha256 and row["model_name"] == "Gemma 3 270m"
    assert row["params"]["temperature"] == 0.7 and row["params"]["top_k"] == 30 and row["seed"] == 11
    assert row["completion_tokens"] == 16 and row["finish_reason"] == "length" and row["prompt_tokens"] == 6
    assert row["prompt_hash"] == content_hash("The capital of France is")
    assert row["response_hash"] == content_hash(text)
    assert row["ttft_ms"] > 0 and row["tokens_per_s"] > 0 and row["duration_ms"] >= row["ttft_ms"]
    assert row["runtime"]["llama_cpp_python"] and row["runtime"]["n_ctx"] == 1024
    assert row["started_at"] <= row["finished_at"]
    assert ledger.verify().ok


def test_same_seed_reproduces_the_text(runner: Runner, ledger: Ledger) -> None:
    first = run_to_end(runner, ledger, completion(max_tokens=12, seed=5), LogContext("cli"))
    second = run_to_end(runner, ledger, completion(max_tokens=12, seed=5), LogContext("cli"))
    assert first.result.text == second.result.text


def test_seed_is_drawn_and_logged_when_not_given(runner: Runner, ledger: Ledger) -> None:
    final = run_to_end(runner, ledger, completion(max_tokens=4), LogContext("cli"))
    row = get_generation(ledger.db, final.generation_id)
    assert isinstance(row["seed"], int) and row["params"]["seed"] == row["seed"]


def test_chat_uses_gemma_format_and_logs_messages(runner: Runner, ledger: Ledger) -> None:
    request = GenerationRequest("chat", messages=[{"role": "user", "content": "Say hello."}],
                                system_prompt="You are terse.", params=SamplingParams(max_tokens=24, seed=3))
    final = run_to_end(runner, ledger, request, LogContext("chat", conversation_id="c1"))
    row = get_generation(ledger.db, final.generation_id)
    assert row["chat_format"] == "gemma" and row["mode"] == "chat"
    assert row["messages"] == [{"role": "system", "content": "You are terse."},
                               {"role": "user", "content": "Say hello."}]
    assert row["system_prompt"] == "You are terse." and row["prompt"] == "Say hello."
    assert row["runtime"]["rendered_prompt"].startswith("<start_of_turn>user\nYou are terse.")
    assert row["conversation_id"] == "c1" and final.result.completion_tokens > 0
    assert "<end_of_turn>" in row["params"]["stop"][0]


def test_stop_mid_stream_logs_cancelled_row_with_partial_text(runner: Runner, ledger: Ledger) -> None:
    cancel = CancelToken()
    seen: list[str] = []
    final = None
    for item in generate_logged(runner, ledger, completion("Count: 1, 2, 3,", max_tokens=200, seed=1),
                                LogContext("chat"), cancel):
        if isinstance(item, TokenChunk):
            seen.append(item.text)
            if len(seen) == 4:
                cancel.cancel()
        else:
            final = item
    assert final is not None and final.result.status == "cancelled"
    assert len(seen) == 4  # stopped within one token
    row = get_generation(ledger.db, final.generation_id)
    assert row["status"] == "cancelled" and row["response"] == "".join(seen) and row["response"]
    assert row["finish_reason"] == "cancelled" and 4 <= row["completion_tokens"] <= 5
    assert ledger.verify().ok


def test_consumer_that_stops_iterating_still_logs_the_partial_turn(runner: Runner, ledger: Ledger) -> None:
    stream = generate_logged(runner, ledger, completion(max_tokens=100, seed=2), LogContext("server"))
    first = next(stream)
    assert isinstance(first, TokenChunk)
    stream.close()
    rows = list_generations(ledger.db, LogFilter(status="cancelled"))
    assert len(rows) == 1 and rows[0]["response"] == first.text and rows[0]["source"] == "server"
    # The runner is free again.
    assert run_to_end(runner, ledger, completion(max_tokens=3), LogContext("cli")).result.status == "ok"


def test_logprobs_are_collected_and_logged(runner: Runner, ledger: Ledger) -> None:
    loaded = runner.loaded
    assert loaded is not None and not loaded.options.logits_all
    final = run_to_end(runner, ledger, completion(max_tokens=5, seed=4, logprobs=3), LogContext("cli"))
    row = get_generation(ledger.db, final.generation_id)
    assert row["logprobs_requested"] == 1
    assert len(row["logprobs"]["token_logprobs"]) == row["completion_tokens"] == 5
    # llama-cpp-python lists the top 3 plus the sampled token when it is not among them.
    for token, top in zip(row["logprobs"]["tokens"], row["logprobs"]["top_logprobs"]):
        assert 3 <= len(top) <= 4 and token in top
    assert runner.loaded.options.logits_all  # reloaded for logprobs, transparently
    runner.load(loaded.sha256, loaded.info, loaded.options)  # back to the cheaper model for other tests
    assert all(lp <= 0 for lp in row["logprobs"]["token_logprobs"])


def test_score_reads_the_same_log_probabilities_llama_cpp_reports(runner: Runner, ledger: Ledger) -> None:
    """Runner.score (one decode, logits only where a continuation token is predicted) agrees with
    llama-cpp-python's own log probabilities of a sampled answer, finds the model's own answer far
    more probable than shuffled words, and leaves the model generating exactly as before."""
    loaded = runner.loaded
    assert loaded is not None
    request = completion("Here is a short story about a lighthouse keeper:", max_tokens=12, seed=11, logprobs=1)
    final = run_to_end(runner, ledger, request, LogContext("cli"))
    row = get_generation(ledger.db, final.generation_id)
    runner.load(loaded.sha256, loaded.info, loaded.options)  # without logits_all, as score() runs
    reported = row["logprobs"]["token_logprobs"]
    scored = runner.score(completion("Here is a short story about a lighthouse keeper:"), row["response"])
    assert scored.tokens == len(reported) == 12
    assert abs(scored.mean_logprob - sum(reported) / len(reported)) < 0.05
    assert scored.mean_entropy > 0
    shuffled = " ".join(reversed(row["response"].split())) + " quantum marmalade cobblestone"
    assert runner.score(completion("Here is a short story about a lighthouse keeper:"), shuffled).mean_logprob \
        < scored.mean_logprob - 1.0
    again = run_to_end(runner, ledger, completion("Here is a short story about a lighthouse keeper:", max_tokens=12,
                                                 seed=11), LogContext("cli"))
    assert again.result.text == row["response"]


def test_prompt_longer_than_context_is_refused_and_logged_as_error(runner: Runner, ledger: Ledger) -> None:
    long_prompt = "word " * 3000
    with pytest.raises(StillroomError, match="longer than the model's context of 1024 tokens"):
        run_to_end(runner, ledger, completion(long_prompt, max_tokens=4), LogContext("server"))
    rows = list_generations(ledger.db)
    assert rows[0]["status"] == "error" and "context" in rows[0]["error"]
    assert ledger.verify().ok


def test_max_tokens_is_clamped_to_the_context(runner: Runner, ledger: Ledger) -> None:
    final = run_to_end(runner, ledger, completion("word " * 1000, max_tokens=500, temperature=0.0),
                       LogContext("cli"))
    assert final.result.prompt_tokens + final.result.completion_tokens <= 1024
    assert final.result.params["max_tokens"] == 1024 - final.result.prompt_tokens


def test_bad_sampling_parameters_are_named() -> None:
    with pytest.raises(ValueError, match="temperature"):
        SamplingParams(temperature=-1)
    with pytest.raises(ValueError, match="max_tokens"):
        SamplingParams(max_tokens=0)
    with pytest.raises(ValueError, match="needs a prompt"):
        GenerationRequest("completion")
