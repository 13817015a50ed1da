"""What a generation asks for: sampling parameters and the request (completion or chat)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.core.tools.spec import ToolSpec

DEFAULT_MAX_TOKENS = 512


@dataclass
class SamplingParams:
    """Every sampling parameter passed to llama.cpp; all of them are logged with the generation.

    seed None means "pick one": the runner draws a seed and reports it, so every logged
    generation can be reproduced. logprobs is the number of top alternatives per token (0 for
    just the chosen token's log probability), None for none.
    """

    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    max_tokens: int = DEFAULT_MAX_TOKENS
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    logprobs: int | None = None
    grammar: str | None = None  # GBNF text constraining the output
    response_format: dict[str, Any] | None = None  # OpenAI style: text, json_object, json_schema

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 <= self.temperature <= 10.0:
            problems.append(f"temperature must be between 0 and 10, got {self.temperature}")
        if not 0.0 <= self.top_p <= 1.0:
            problems.append(f"top_p must be between 0 and 1, got {self.top_p}")
        if not 0.0 <= self.min_p <= 1.0:
            problems.append(f"min_p must be between 0 and 1, got {self.min_p}")
        if self.top_k < 0:
            problems.append(f"top_k must be 0 or more, got {self.top_k}")
        if self.max_tokens < 1:
            problems.append(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.repeat_penalty <= 0:
            problems.append(f"repeat_penalty must be above 0, got {self.repeat_penalty}")
        if self.logprobs is not None and not 0 <= self.logprobs <= 20:
            problems.append(f"logprobs must be between 0 and 20, got {self.logprobs}")
        if self.seed is not None and not 0 <= self.seed < 2**32:
            problems.append(f"seed must be between 0 and 2**32-1, got {self.seed}")
        kind = (self.response_format or {}).get("type", "text")
        if kind not in ("text", "json_object", "json_schema"):
            problems.append(f"response_format type must be text, json_object or json_schema, got {kind!r}")
        if problems:
            raise ValueError("; ".join(problems))

    def as_dict(self) -> dict[str, Any]:
        """All parameters as a plain dict (logged as JSON)."""
        return asdict(self)


@dataclass
class GenerationRequest:
    """One generation: a plain completion of `prompt`, or a chat over `messages`.

    For chat, `messages` are [{role, content}] without the system prompt, which goes in
    `system_prompt`; the runner renders them with the model's chat format. An assistant message
    may also carry `tool_calls` and a tool message `tool_call_id` and `name` (app.core.tools.history);
    `tools` is what the request offers the model to call.
    """

    mode: str  # "completion" or "chat"
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    system_prompt: str | None = None
    params: SamplingParams = field(default_factory=SamplingParams)
    tools: ToolSpec | None = None

    def __post_init__(self) -> None:
        if self.mode == "completion":
            if self.prompt is None:
                raise ValueError("a completion needs a prompt")
        elif self.mode == "chat":
            if not self.messages:
                raise ValueError("a chat needs at least one message")
            for message in self.messages:
                if message.get("role") not in ("system", "user", "assistant", "tool"):
                    raise ValueError(f"unknown message role {message.get('role')!r}")
                if not isinstance(message.get("content"), str):
                    raise ValueError("every message needs text content")
        else:
            raise ValueError(f"mode must be 'completion' or 'chat', got {self.mode!r}")

    def full_messages(self) -> list[dict[str, Any]]:
        """The chat messages with the system prompt first (chat mode)."""
        messages = [dict(m) for m in self.messages or []]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return messages

    def uses_tools(self) -> bool:
        """Whether the request offers tools or its history holds tool calls or results."""
        return self.tools is not None or any(m["role"] == "tool" or m.get("tool_calls") for m in self.messages or [])

    def prompt_text(self) -> str:
        """What the user asked: the completion prompt, or the last user message of a chat."""
        if self.mode == "completion":
            return self.prompt or ""
        users = [m["content"] for m in self.messages or [] if m["role"] == "user"]
        return users[-1] if users else ""
