"""Every endpoint the local server answers, in one list: the server routes by it and the window's
Server view shows it, so an endpoint added here is both served and listed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: its method and path, what it does in a few words, and for a POST endpoint the
    handler kind it is served by ('chat' or 'completions' in app.core.serve.openai_handler)."""

    method: str
    path: str
    summary: str
    kind: str | None = None


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/health", "whether the server is up (no API key needed)"),
    Endpoint("GET", "/v1/models", "every registered model"),
    Endpoint("POST", "/v1/chat/completions", "chat, streamed or not, with tool calling", "chat"),
    Endpoint("POST", "/v1/completions", "plain text completion, streamed or not", "completions"),
)
