"""The one list of endpoints the local server answers: the server routes by it, and what shows the
server to people (the Server view, the docs) reads it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """An HTTP method and path, the API whose shape it speaks, and one line on what it does."""

    method: str
    path: str
    api: str
    summary: str


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/health", "Stillroom", "is the server up (no key needed)"),
    Endpoint("GET", "/v1/models", "OpenAI", "every registered model"),
    Endpoint("POST", "/v1/completions", "OpenAI", "text completion"),
    Endpoint("POST", "/v1/chat/completions", "OpenAI", "chat completion"),
    Endpoint("POST", "/v1/embeddings", "OpenAI", "vectors from the bundled encoder or an embedding GGUF"),
    Endpoint("POST", "/v1/responses", "OpenAI Responses", "a response to input items, run as a chat completion"),
    Endpoint("POST", "/v1/messages", "Anthropic Messages", "a message, run as a chat completion"),
)


def paths(method: str) -> set[str]:
    """The paths answered for `method`."""
    return {endpoint.path for endpoint in ENDPOINTS if endpoint.method == method}
