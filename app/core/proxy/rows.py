"""The ledger row of a proxied request: what was asked (exchange.read_request), what the engine
answered (exchange.read_answer), which engine and which model (identity and how it was known), and
how it ended: ok, error (the engine's error status, an engine that could not be reached, or one that
broke off mid-answer, logged as partial) or cancelled (the client went away)."""

from __future__ import annotations

import json
import time
from typing import Any

from app.core.log_excerpt import bounded_value
from app.core.proxy.exchange import Answer, read_answer, read_request
from app.core.proxy.forward import Relayed
from app.core.proxy.identity import ModelIdentity
from app.core.proxy.upstreams import Upstream
from app.core.serve.openai_handler import MAX_LOGGED_EXTRAS_CHARS
from app.core.store.ledger import utc_now

SOURCE = "proxy"


def _base(route: str, body: Any, upstream: Upstream, context: dict[str, Any], started_at: str,
          started: float, identity: ModelIdentity | None) -> dict[str, Any]:
    asked = read_request(route, body)
    if asked["params"]:
        asked["params"] = bounded_value(asked["params"], MAX_LOGGED_EXTRAS_CHARS)
    meta = {"proxy": {"upstream": upstream.url, "endpoint": route, "api_key": context.get("api_key"),
                      "client": context.get("client"),
                      "identity": identity.as_meta() if identity else None}}
    return asked | {
        "started_at": started_at,
        "finished_at": utc_now(),
        "source": SOURCE,
        "workflow": context["workflow"],
        "model_sha256": identity.sha256 if identity else None,
        "model_name": identity.name if identity else None,
        "duration_ms": round((time.monotonic() - started) * 1000, 3),
        "runtime": {"engine": "upstream", "upstream": upstream.url},
        "meta": meta,
    }


def unreachable_row(route: str, body: Any, upstream: Upstream, error: str, context: dict[str, Any],
                    started_at: str, started: float) -> dict[str, Any]:
    """The error row of a request whose engine could not be reached (the client got 502)."""
    model = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None
    row = _base(route, body, upstream, context, started_at, started, upstream.identity(model, ask=False))
    row["meta"]["proxy"] |= {"http_status": 502, "stream": bool(isinstance(body, dict) and body.get("stream"))}
    return row | {"status": "error", "error": error, "finish_reason": "error", "prompt_tokens": 0,
                  "completion_tokens": 0}


def proxied_row(route: str, body: Any, upstream: Upstream, relayed: Relayed, context: dict[str, Any],
                started_at: str, started: float) -> dict[str, Any]:
    """The row of a request the engine answered (fully, with an error status, or in part)."""
    answer = read_answer(bytes(relayed.body), relayed.content_type, route)
    requested = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None
    identity = upstream.identity(requested or answer.model)
    row = _base(route, body, upstream, context, started_at, started, identity)
    status, error = _outcome(relayed, answer)
    row["meta"]["proxy"] |= {
        "http_status": relayed.status, "stream": _is_stream(relayed), "bytes": relayed.size,
        "reported_model": answer.model, "partial": relayed.broken is not None or relayed.client_gone,
        "captured_whole": not relayed.truncated,
    }
    if answer.tool_calls:
        row["meta"]["tools"] = {"calls": len(answer.tool_calls)}
    if answer.summary:
        row["meta"]["embedding"] = answer.summary
    first = relayed.first_byte_at
    ttft = round((first - started) * 1000, 3) if first is not None else None
    generating = (relayed.ended_at - first) if first is not None else 0.0
    tokens_per_s = (round(answer.completion_tokens / generating, 3)
                    if answer.completion_tokens and generating > 0 and _is_stream(relayed) else None)
    return row | {
        "response": _response_text(answer),
        "finish_reason": answer.finish_reason if status == "ok" else (answer.finish_reason or status),
        "prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
        "ttft_ms": ttft, "tokens_per_s": tokens_per_s, "status": status, "error": error,
    }


def _is_stream(relayed: Relayed) -> bool:
    return (relayed.content_type or "").split(";")[0].strip().lower() == "text/event-stream"


def _outcome(relayed: Relayed, answer: Answer) -> tuple[str, str | None]:
    if relayed.client_gone:
        return "cancelled", "the client went away before the answer ended"
    if relayed.broken is not None:
        return "error", f"partial answer: {relayed.broken}"
    if relayed.status >= 400:
        return "error", f"the upstream answered HTTP {relayed.status}: {answer.error or 'no message'}"
    if answer.error:
        return "error", f"the upstream reported an error: {answer.error}"
    return "ok", None


def _response_text(answer: Answer) -> str | None:
    """The answer's text, or its tool calls as JSON when it made calls and said nothing."""
    if answer.tool_calls and not answer.text:
        return json.dumps(answer.tool_calls, ensure_ascii=False)
    return answer.text
