"""Turning chat messages into a prompt: the GGUF's own template, else one chosen by architecture.

Chat is always rendered here and run as a completion, so that every path (chat, completion,
server) goes through the same generation loop and the exact prompt text is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

TEMPLATE = "template"  # the Jinja chat template stored in the GGUF
PLAIN = "plain"  # a plain transcript for models with no known format
ARCH_FORMATS: dict[str, str] = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "gemma3n": "gemma",
    "qwen2": "chatml",
    "qwen3": "chatml",
    "qwen2moe": "chatml",
    "qwen3moe": "chatml",
}
KNOWN_FORMATS = (TEMPLATE, PLAIN, "gemma", "chatml", "llama-2", "llama-3", "mistral-instruct")


@dataclass(frozen=True)
class RenderedChat:
    """A chat turned into prompt text, the stop strings that end the model's turn, and whether
    the text already holds the BOS token."""

    prompt: str
    stop: tuple[str, ...]
    added_special: bool


def choose_chat_format(architecture: str, has_template: bool, override: str | None = None) -> str:
    """The chat format to use: an explicit override, the GGUF's template, the architecture's
    known format (gemma for Gemma), else a plain transcript."""
    if override and override != "auto":
        if override not in KNOWN_FORMATS:
            raise ValueError(f"unknown chat format {override!r}; choose one of {', '.join(KNOWN_FORMATS)}")
        return override
    if has_template:
        return TEMPLATE
    return ARCH_FORMATS.get(architecture, PLAIN)


def merge_system_into_first_user(messages: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """For formats without a system role (Gemma): prepend the system text to the first user turn."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system" and m["content"])
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if system:
        for message in rest:
            if message["role"] == "user":
                message["content"] = f"{system}\n\n{message['content']}"
                break
        else:
            rest.insert(0, {"role": "user", "content": system})
    return rest


def render_plain(messages: Sequence[dict[str, str]]) -> RenderedChat:
    """A transcript any base model can continue: 'User:' / 'Assistant:' lines."""
    lines: list[str] = []
    for message in messages:
        role, content = message["role"], message["content"]
        if role == "system":
            lines.append(f"{content}\n")
        elif role == "assistant":
            lines.append(f"Assistant: {content}")
        else:
            lines.append(f"User: {content}")
    lines.append("Assistant:")
    return RenderedChat("\n".join(lines), ("\nUser:", "\nAssistant:"), False)


def render_chat(fmt: str, messages: Sequence[dict[str, Any]], *, template: str | None = None,
                bos_token: str = "", eos_token: str = "", tools: list[dict[str, Any]] | None = None) -> RenderedChat:
    """Render `messages` ([{role, content}]) in chat format `fmt`; `tools` (OpenAI's tool shape) go
    to a template that lists them itself (app.core.tools.prompt decides which do)."""
    if fmt == PLAIN:
        return render_plain(messages)
    from llama_cpp import llama_chat_format  # the runner has imported llama_cpp already

    if fmt == TEMPLATE:
        if not template:
            raise ValueError("this model has no chat template; choose a chat format")
        formatter = llama_chat_format.Jinja2ChatFormatter(template=template, eos_token=eos_token,
                                                          bos_token=bos_token)
        result = formatter(messages=list(messages), tools=tools)
    else:
        if fmt == "gemma":
            messages = merge_system_into_first_user(messages)
        formatters = {
            "gemma": llama_chat_format.format_gemma,
            "chatml": llama_chat_format.format_chatml,
            "llama-2": llama_chat_format.format_llama2,
            "llama-3": llama_chat_format.format_llama3,
            "mistral-instruct": llama_chat_format.format_mistral_instruct,
        }
        result = formatters[fmt](messages=list(messages))
    stop = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
    if eos_token and fmt == TEMPLATE:
        stop.append(eos_token)
    return RenderedChat(result.prompt, tuple(dict.fromkeys(s for s in stop if s)), bool(result.added_special))
