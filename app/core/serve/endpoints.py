"""Every endpoint the local server answers, in one list: the server routes by it and the window's
Server view shows it, so an endpoint added here is both served and listed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: its method and path, what it does in a few words, and for a POST endpoint the
    handler kind it is served by: 'chat' or 'completions' (app.core.serve.openai_handler), or
    'embeddings', 'responses' or 'messages' (the server's own routes; the last two translate into
    'chat')."""

    method: str
    path: str
    summary: str
    kind: str | None = None


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/health", "whether the server is up (no API key needed)"),
    Endpoint("GET", "/v1/models", "every registered model"),
    Endpoint("POST", "/v1/chat/completions", "chat, streamed or not, with tool calling", "chat"),
    Endpoint("POST", "/v1/completions", "plain text completion, streamed or not", "completions"),
    Endpoint("POST", "/v1/embeddings", "vectors for texts, from the bundled all-MiniLM-L6-v2 or an embedding GGUF",
             "embeddings"),
    Endpoint("POST", "/v1/responses", "OpenAI's Responses API (input items, tools, streaming events), run as a chat",
             "responses"),
    Endpoint("POST", "/v1/messages", "Anthropic's Messages API (content blocks, tools, streaming events), run as a "
             "chat", "messages"),
)
