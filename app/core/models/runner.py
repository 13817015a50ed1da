"""The runner: the only module that loads models with llama_cpp (cpu_backend reads the build's system info
and chat_format its chat templates). It owns one loaded model at a time.

A Runner is not thread-safe in the sense of parallel use: it serializes generations with a lock,
and the model is closed before another is loaded. stream() is a generator that yields TokenChunk
for each piece of text and a GenerationResult at the end; it checks the cancel token between
tokens, so cancelling takes effect within one token.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from app.core.cancel import NEVER, CancelToken
from app.core.errors import ContextLengthError, ModelFileError, ModelNotLoadedError, StillroomError
from app.core.models import cpu_backend
from app.core.models.chat_format import choose_chat_format, render_chat
from app.core.models.gguf_info import GGUFInfo
from app.core.models.llama_binding import continuation_logprobs, counting_llama_class, llama_cpp_version, model_params
from app.core.models.memory import check_fits
from app.core.models.sampling import GenerationRequest
from app.core.models.constraints import CallWatch, lazy_call_spec, request_grammar, tool_prompt

DEFAULT_N_CTX = 4096
SEED_RANGE = 2**32


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model. n_gpu_layers: 0 keeps everything on the CPU, -1 offloads all layers
    (needs a GPU build of llama-cpp-python). chat_format: 'auto' or a name from KNOWN_FORMATS."""

    n_ctx: int = DEFAULT_N_CTX
    n_gpu_layers: int = 0
    n_threads: int | None = None
    seed: int | None = None
    chat_format: str = "auto"
    logits_all: bool = False
    embedding: bool = False  # load for embed() (an embedding model), not for generation


@dataclass(frozen=True)
class LoadedModel:
    """A model the runner holds: its identity, metadata and how it was loaded."""

    sha256: str
    info: GGUFInfo
    options: LoadOptions
    chat_format: str
    n_threads: int


@dataclass(frozen=True)
class TokenChunk:
    """A piece of generated text (usually one token) and its log probabilities if asked."""

    text: str
    logprobs: dict[str, Any] | None = None


@dataclass(frozen=True)
class ContinuationScore:
    """How likely a model finds a given answer: its tokens' mean log probability (nats) and the mean
    entropy of the model's next-token distribution over them (`tokens` scored; 0: nothing to score)."""

    tokens: int
    mean_logprob: float
    mean_entropy: float


@dataclass(frozen=True)
class Embeddings:
    """What embed() returns: one L2-normalized vector per text, and each text's token count."""

    vectors: list[list[float]]
    token_counts: list[int]
    runtime: dict[str, Any]


@dataclass
class GenerationResult:
    """The end of a generation. status: ok, cancelled (text is the partial output) or error."""

    text: str
    finish_reason: str
    status: str
    prompt_tokens: int
    completion_tokens: int
    ttft_ms: float | None
    duration_ms: float
    tokens_per_s: float | None
    seed: int
    params: dict[str, Any]
    rendered_prompt: str
    chat_format: str | None
    logprobs: dict[str, list[Any]] | None = None
    error: str | None = None
    runtime: dict[str, Any] = field(default_factory=dict)


class Runner:
    """Loads one GGUF model through llama.cpp and streams generations from it."""

    def __init__(self) -> None:
        self._llm: Any = None
        self._loaded: LoadedModel | None = None
        self._lock = threading.RLock()

    @property
    def loaded(self) -> LoadedModel | None:
        """The model currently loaded, or None."""
        return self._loaded

    def load(self, sha256: str, info: GGUFInfo, options: LoadOptions = LoadOptions()) -> LoadedModel:
        """Load the model described by `info` (from the registry), closing any model held before.

        Raises ModelFileError naming the file when it will not fit in memory or llama.cpp
        cannot load it; the previously loaded model is closed either way.
        """
        with self._lock:
            self.unload()
            check_fits(info, options.n_ctx, options.n_gpu_layers)
            chat_format = choose_chat_format(info.architecture, info.has_chat_template, options.chat_format)
            threads = options.n_threads or max(1, os.cpu_count() or 1)
            llama_class = counting_llama_class()
            backend = cpu_backend.current()
            try:
                with model_params(use_extra_bufts=backend.use_extra_bufts):
                    self._llm = llama_class(
                        model_path=info.path,
                        n_ctx=options.n_ctx,
                        n_gpu_layers=options.n_gpu_layers,
                        n_threads=threads,
                        seed=options.seed if options.seed is not None else random.randrange(SEED_RANGE),
                        logits_all=options.logits_all,
                        embedding=options.embedding,
                        verbose=False,
                    )
            except (ValueError, RuntimeError, OSError) as exc:
                self._llm = None
                raise ModelFileError(f"{info.path}: llama.cpp could not load this model ({exc})") from exc
            self._loaded = LoadedModel(sha256, info, options, chat_format, threads)
            return self._loaded

    def unload(self) -> None:
        """Close the loaded model and free its memory (no-op when none is loaded)."""
        with self._lock:
            if self._llm is not None:
                self._llm.close()
            self._llm = None
            self._loaded = None

    def count_tokens(self, text: str) -> int:
        """Number of tokens `text` takes with the loaded model's tokenizer."""
        with self._lock:
            llm = self._require()
            return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def score(self, request: GenerationRequest, continuation: str, max_tokens: int = 64) -> ContinuationScore:
        """How likely the loaded model finds `continuation` (its first `max_tokens` tokens) as its
        answer to `request`, the prompt rendered exactly as a generation would render it. A prompt
        too long for the context keeps its end (nearest the answer). Runs on the owner's thread."""
        with self._lock:
            llm, loaded = self._require(), self._loaded
            assert loaded is not None
            if loaded.options.embedding:
                raise StillroomError(f"{loaded.info.name} is an embedding model; it does not score text")
            prompt, _, _ = self._prompt_tokens(request)
            answer = llm.tokenize(continuation.encode("utf-8"), add_bos=False, special=False)[:max_tokens]
            if not prompt:  # no prompt and no BOS: the answer's first token is the context of the rest
                prompt, answer = answer[:1], answer[1:]
            limit = min(loaded.options.n_ctx, llm.n_batch)  # one decode holds prompt and answer
            if len(answer) >= limit:
                answer = answer[:limit // 2]
            room = limit - len(answer)
            if not answer:
                return ContinuationScore(0, 0.0, 0.0)
            log_probs, entropy = continuation_logprobs(llm, prompt[-room:], answer)
            return ContinuationScore(len(answer), float(log_probs.mean()), float(entropy.mean()))

    def embed(self, texts: list[str]) -> Embeddings:
        """One normalized vector per text from a model loaded with `embedding=True`. Runs on the
        caller's thread (the runner's owner). Raises ContextLengthError naming the first text
        longer than the model reads at once, and StillroomError for a model that pools nothing."""
        with self._lock:
            llm, loaded = self._require(), self._loaded
            assert loaded is not None
            if not loaded.options.embedding:
                raise StillroomError(f"{loaded.info.name} was not loaded as an embedding model")
            import llama_cpp

            if llm.pooling_type() == llama_cpp.LLAMA_POOLING_TYPE_NONE:
                raise StillroomError(f"{loaded.info.name} names no pooling, so it gives no vector per text")
            limit = min(loaded.options.n_ctx, llm.n_batch, loaded.info.context_length or loaded.options.n_ctx)
            counts = [len(llm.tokenize(text.encode("utf-8"))) for text in texts]
            for index, count in enumerate(counts):
                if count > limit:
                    raise ContextLengthError(f"input[{index}] is {count} tokens long; {loaded.info.name} reads "
                                             f"at most {limit} tokens at once")
            vectors = llm.embed(texts, normalize=True, truncate=False)
            runtime = {"llama_cpp_python": llama_cpp_version(), "n_ctx": loaded.options.n_ctx,
                       "n_threads": loaded.n_threads, "cpu_backend": cpu_backend.current().row_fields()}
            return Embeddings([list(map(float, vector)) for vector in vectors], counts, runtime)

    def _require(self) -> Any:
        if self._llm is None or self._loaded is None:
            raise ModelNotLoadedError("no model is loaded; load one first")
        return self._llm

    def _prompt_tokens(self, request: GenerationRequest) -> tuple[list[int], str, list[str]]:
        llm, loaded = self._llm, self._loaded
        assert loaded is not None
        stops = list(request.params.stop)
        if request.mode == "chat":
            messages, tools = tool_prompt(request, loaded.chat_format, loaded.info.chat_template)
            rendered = render_chat(
                loaded.chat_format, messages, template=loaded.info.chat_template,
                bos_token=_token_text(llm, llm.token_bos()), eos_token=_token_text(llm, llm.token_eos()),
                tools=tools,
            )
            text, add_bos = rendered.prompt, not rendered.added_special
            stops.extend(s for s in rendered.stop if s not in stops)
        else:
            text, add_bos = request.prompt or "", True
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=request.mode == "chat")
        return tokens, text, stops

    def _ensure_logits_for(self, request: GenerationRequest) -> None:
        """Reload with logits_all when log probabilities are asked for and the model lacks them."""
        loaded = self._loaded
        if request.params.logprobs is not None and loaded is not None and not loaded.options.logits_all:
            self.load(loaded.sha256, loaded.info, replace(loaded.options, logits_all=True))

    def stream(self, request: GenerationRequest, cancel: CancelToken = NEVER) -> Iterator[TokenChunk | GenerationResult]:
        """Generate for `request`, yielding TokenChunk per piece of text, then one GenerationResult.

        Runs on the caller's thread (the runner's owner). Cancellation is checked between tokens:
        the result then has status 'cancelled' and the partial text. A request the model cannot
        serve (prompt longer than the context) raises StillroomError before any token.
        """
        with self._lock:
            self._require()
            if self._loaded is not None and self._loaded.options.embedding:
                raise StillroomError(f"{self._loaded.info.name} is an embedding model; it does not generate text")
            self._ensure_logits_for(request)
            llm, loaded = self._llm, self._loaded
            assert loaded is not None
            params = request.params
            seed = params.seed if params.seed is not None else random.randrange(SEED_RANGE)
            tokens, rendered, stops = self._prompt_tokens(request)
            n_ctx = loaded.options.n_ctx
            if len(tokens) >= n_ctx:
                raise ContextLengthError(
                    f"the prompt is {len(tokens)} tokens long, longer than the model's context of {n_ctx} tokens"
                )
            max_tokens = min(params.max_tokens, n_ctx - len(tokens))
            logged_params = params.as_dict() | {"seed": seed, "stop": stops, "max_tokens": max_tokens}
            runtime = {
                "llama_cpp_python": llama_cpp_version(), "n_ctx": n_ctx, "n_gpu_layers": loaded.options.n_gpu_layers,
                "n_threads": loaded.n_threads, "logits_all": loaded.options.logits_all,
                "cpu_backend": cpu_backend.current().row_fields(),
            }
            grammar = request_grammar(request)
            lazy_spec = lazy_call_spec(request)
            watch = CallWatch() if lazy_spec is not None else None
            collected: dict[str, list[Any]] | None = None
            start = time.perf_counter()
            first: float | None = None
            while True:  # once, or twice when an auto answer began like a tool call (see constraints.py)
                llm.sampled, llm.last_token = 0, -1
                pieces: list[str] = []
                collected = {} if params.logprobs is not None else None
                finish, status, error, restart = "length", "ok", None, False
                stream = llm.create_completion(
                    prompt=tokens, max_tokens=max_tokens, temperature=params.temperature, top_p=params.top_p,
                    top_k=params.top_k, min_p=params.min_p, repeat_penalty=params.repeat_penalty,
                    presence_penalty=params.presence_penalty, frequency_penalty=params.frequency_penalty,
                    stop=stops, seed=seed, logprobs=params.logprobs, grammar=grammar, stream=True,
                )
                try:
                    for chunk in stream:
                        if cancel.cancelled:
                            finish, status = "cancelled", "cancelled"
                            break
                        choice = chunk["choices"][0]
                        text = choice.get("text") or ""
                        if text:
                            if first is None:
                                first = time.perf_counter()
                            pieces.append(text)
                            chunk_logprobs = choice.get("logprobs")
                            if collected is not None and chunk_logprobs:
                                for key, values in chunk_logprobs.items():
                                    collected.setdefault(key, []).extend(values or [])
                            piece = TokenChunk(text, chunk_logprobs)
                            released = watch.feed(piece, text) if watch is not None else [piece]
                            if released is None:
                                restart = True
                                break
                            yield from released
                        if choice.get("finish_reason"):
                            finish = choice["finish_reason"]
                except GeneratorExit:
                    finish, status = "cancelled", "cancelled"
                    raise
                except Exception as exc:  # noqa: BLE001 - logged as an error row by the caller
                    finish, status, error = "error", "error", f"{type(exc).__name__}: {exc}"
                finally:
                    stream.close()
                if not restart:
                    break
                assert lazy_spec is not None
                runtime["tool_grammar"] = {"lazy": True, "free_tokens_discarded": llm.sampled,
                                           "free_start": "".join(pieces)[:200]}
                grammar, watch = request_grammar(replace(request, tools=lazy_spec)), None
            if watch is not None:
                yield from watch.release()
            end = time.perf_counter()
            if finish == "stop" and params.stop and not _is_eog(llm, llm.last_token):
                matched = _matched_stop(llm, len(tokens), "".join(pieces), stops)
                if matched in params.stop:
                    runtime["stop_sequence"] = matched
            completion_tokens = llm.sampled - (1 if _is_eog(llm, llm.last_token) else 0)
            decode_s = end - first if first is not None else 0.0
            result = GenerationResult(
                text="".join(pieces), finish_reason=finish, status=status, prompt_tokens=len(tokens),
                completion_tokens=max(0, completion_tokens),
                ttft_ms=(first - start) * 1000 if first is not None else None,
                duration_ms=(end - start) * 1000,
                tokens_per_s=(completion_tokens - 1) / decode_s if completion_tokens > 1 and decode_s > 0 else None,
                seed=seed, params=logged_params, rendered_prompt=rendered,
                chat_format=loaded.chat_format if request.mode == "chat" else None,
                logprobs=collected, error=error, runtime=runtime,
            )
        yield result


def _matched_stop(llm: Any, prompt_tokens: int, text: str, stops: list[str]) -> str | None:
    """Which of `stops` ended an answer whose text (cut before the stop) is `text`: the one that
    occurs first in what the model sampled (llama-cpp-python cuts at the first stop found but does
    not say which it was)."""
    sampled = [int(t) for t in llm.input_ids[prompt_tokens:llm.n_tokens]]
    if llm.last_token >= 0 and (not sampled or sampled[-1] != llm.last_token):
        sampled.append(llm.last_token)
    full = llm.detokenize(sampled, special=True).decode("utf-8", errors="ignore")
    start = max(0, len(text) - max(map(len, stops)))
    found = [(index, stop) for stop in stops if (index := full.find(stop, start)) >= 0]
    return min(found)[1] if found else None


def _token_text(llm: Any, token: int) -> str:
    if token < 0:
        return ""
    return llm.detokenize([token], special=True).decode("utf-8", errors="ignore")


def _is_eog(llm: Any, token: int) -> bool:
    if token < 0:
        return False
    import llama_cpp

    return bool(llama_cpp.llama_vocab_is_eog(llm._model.vocab, token))
