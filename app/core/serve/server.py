"""The local HTTP server: OpenAI-compatible endpoints over the ModelHost, logged to the ledger.

Binds to 127.0.0.1 by default. On any other address every request needs a valid API key; on any
address a key that looks like ours (sk-stillroom-) but is unknown or revoked gets 401. Requests
addressed to another Host, sent from another Origin or not declared JSON are refused (see
request_guard). Each request is handled on its own thread; generations queue on the one model thread.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.core.embedding import LoggedEmbedding
from app.core.errors import ContextLengthError, StillroomError
from app.core.generation import LogContext
from app.core.log_excerpt import bounded_value
from app.core.models.runner import LoadedModel, LoadOptions
from app.core.serve import anthropic_api, responses_api
from app.core.serve.catalog import EMBEDDING_KIND, EMBEDDINGS_ENDPOINT, ENCODER_ROLE, ServedModel, load_catalog
from app.core.serve.catalog import pick_model
from app.core.serve.embeddings_api import embeddings_response, parse_embeddings
from app.core.serve.encoder_host import EncoderHost
from app.core.serve.endpoints import ENDPOINTS
from app.core.serve.guarded_handler import DEFAULT_HOST, MAX_BODY_BYTES, WORKFLOW_HEADER, GuardedHandler, KeyGate
from app.core.serve.guarded_handler import Listener, ListeningServer, client_name, is_loopback
from app.core.serve.model_host import HostBusyError, Job, ModelHost
from app.core.serve.openai_api import ApiError, new_id, now
from app.core.serve.openai_handler import MAX_LOGGED_EXTRAS_CHARS, Caller, api_error, start_openai

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "MAX_BODY_BYTES", "WORKFLOW_HEADER", "StillroomServer", "is_loopback"]

LOG = logging.getLogger("stillroom.serve")
DEFAULT_PORT = 8765
ANTHROPIC_PATH = "/v1/messages"  # its errors take Anthropic's shape
API_NAMES = {"chat": "chat.completions", "completions": "completions", "embeddings": "embeddings",
             "responses": "responses", "messages": "messages"}  # meta.server.api of each handler kind's rows


class StillroomServer(ListeningServer):
    """An OpenAI-compatible server over the registered models, one loaded at a time (a request naming
    another switches it). start() returns once it listens."""

    def __init__(self, ledger_path: Path, model_ref: str | None = None, *, host: str = DEFAULT_HOST,
                 port: int = DEFAULT_PORT, options: LoadOptions = LoadOptions(),
                 require_key: bool | None = None, model_host: ModelHost | None = None) -> None:
        """`model_host` lets an application that already owns a model thread (the desktop app)
        serve through it: any object with ModelHost's start/stop/submit/loaded will do. Without
        one, the server loads `model_ref` on a ModelHost of its own."""
        self.host, self.port = host, port
        self.keys = KeyGate(ledger_path, host, require_key)
        self.model_host = model_host or ModelHost(ledger_path, model_ref, options)
        self.encoder_host = EncoderHost(ledger_path)
        self.listener = Listener(host, port, _Handler, self)

    def start(self) -> LoadedModel:
        """Load the model and start listening. Raises StillroomError if either fails."""
        self.keys.check_startable()
        loaded = self.model_host.start()
        try:
            self.port = self.listener.start()
        except StillroomError:
            self.model_host.stop()
            raise
        LOG.info("serving %s at %s", loaded.info.name, self.url)
        return loaded

    def stop(self) -> None:
        """Stop accepting requests, finish the running generation, unload the model."""
        self.listener.stop()
        self.model_host.stop()
        self.encoder_host.close()
        self.keys.close()

    def model_id(self) -> str:
        """The id /v1/models reports for the model loaded now."""
        return Path(self.model_host.loaded.info.path).stem

    def catalog(self) -> list[ServedModel]:
        """Every registered model whose file is present (what /v1/models lists)."""
        with self.keys.lock:
            return load_catalog(self.keys.db)

    def pick_model(self, body: Any, endpoint: str) -> ServedModel | None:
        """The registered model a request body names (see catalog.pick_model); None when the body
        names none (its parser reports that). Raises ApiError 404 for a name no model has, 400 for
        a model of the wrong kind (an embedding model asked for text, or the reverse)."""
        requested = body.get("model") if isinstance(body, dict) else None
        if not isinstance(requested, str) or not requested:
            return None
        catalog = self.catalog()
        chosen = pick_model(catalog, requested, endpoint)
        if chosen is None:
            names = ", ".join(f"'{m.id}'" for m in catalog) or "none"
            raise ApiError(404, f"the model '{requested}' does not exist here; this server has {names}",
                           "model", "model_not_found")
        if (chosen.kind == EMBEDDING_KIND) != (endpoint == EMBEDDINGS_ENDPOINT):
            wanted = EMBEDDING_KIND if endpoint == EMBEDDINGS_ENDPOINT else "text-generation"
            names = ", ".join(f"'{m.id}'" for m in catalog if (m.kind == EMBEDDING_KIND) == (wanted == EMBEDDING_KIND))
            doing = "embeds text" if chosen.kind == EMBEDDING_KIND else "generates text"
            raise ApiError(400, f"the model '{requested}' {doing}; this endpoint needs a {wanted} model: "
                                f"{names or 'none is registered'}", "model", "model_not_supported")
        return chosen


class _Handler(GuardedHandler):
    """The OpenAI-, Anthropic- and Responses-compatible routes over the server's models."""

    def _guard(self, action: Callable[[], None]) -> None:
        def run() -> None:
            try:
                action()
            except HostBusyError as exc:
                raise ApiError(503, str(exc), None, "server_busy", "server_error") from exc
        super()._guard(run)

    def _send_error(self, exc: ApiError) -> None:
        """An error in the shape of the API the request spoke: Anthropic's on /v1/messages, else OpenAI's."""
        anthropic = self.route() == ANTHROPIC_PATH
        self._send_json(exc.status, anthropic_api.error_body(exc) if anthropic else exc.body())

    # -- routes ----------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._guard(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._guard(self._post)

    def _get(self) -> None:
        app = self.server.app
        path = self.route()
        self._admit(path)
        if path == "/health":
            self._send_json(200, {"status": "ok"})
            return
        if path == "/v1/models":
            created = now()
            self._send_json(200, {"object": "list", "data": [m.as_openai(created) for m in app.catalog()]})
            return
        raise ApiError(404, f"unknown endpoint {path}", None, "not_found")

    def _post(self) -> None:
        path = self.route()
        key = self._admit(path)
        endpoint = next((e for e in ENDPOINTS if e.path == path and e.method == "POST"), None)
        if endpoint is None:
            raise ApiError(404, f"unknown endpoint {path}", None, "not_found")
        assert endpoint.kind is not None
        caller = Caller(self._workflow(key), path, key.name if key else None,
                        client_name(self.headers.get("User-Agent")), {"api": API_NAMES[endpoint.kind]})
        body = self._read_json()
        routes = {"embeddings": self._embeddings, "responses": self._responses, "messages": self._messages}
        if endpoint.kind in routes:
            routes[endpoint.kind](body, caller)
            return
        started = start_openai(self.server.app, endpoint.kind, body, caller)
        try:
            if started.stream:
                self._send_events(_openai_events(started.chunks()))
            else:
                self._send_json(200, started.response())
        except BaseException:
            started.cancel()
            raise

    def _embeddings(self, body: Any, caller: Caller) -> None:
        """/v1/embeddings: the bundled encoder on this thread, an embedding GGUF on the model host."""
        app = self.server.app
        chosen = app.pick_model(body, EMBEDDINGS_ENDPOINT)
        parsed = parse_embeddings(body, chosen.dimensions if chosen else None)
        assert chosen is not None  # the parser refused a body without a model
        meta = {"endpoint": caller.endpoint, "request_id": new_id("embd"), "api_key": caller.api_key,
                "client": caller.client, "stream": False,
                "extras": bounded_value(parsed.extras, MAX_LOGGED_EXTRAS_CHARS) or None} | caller.meta
        context = LogContext("server", workflow=caller.workflow, meta={"server": meta})
        try:
            if chosen.role == ENCODER_ROLE:
                logged = app.encoder_host.embed(parsed.request, context, chosen.sha256, chosen.name)
            else:
                logged = _collect_embedding(app.model_host.submit(parsed.request, context, chosen.sha256))
        except ContextLengthError as exc:
            raise ApiError(400, str(exc), "input", "context_length_exceeded") from exc
        except (StillroomError, ValueError) as exc:
            raise api_error(exc) from exc
        result = logged.result
        self._send_json(200, embeddings_response(result.vectors, parsed.encoding_format, chosen.id,
                                                 result.prompt_tokens, logged.generation_id))

    def _responses(self, body: Any, caller: Caller) -> None:
        """/v1/responses: the Responses request as a chat completion, its answer back as a Response."""
        chat, context = responses_api.to_chat(body)
        started = start_openai(self.server.app, "chat", chat, _noting(caller, context.extras))
        try:
            if not started.stream:
                self._send_json(200, responses_api.from_chat(started.response(), context))
                return
            events = responses_api.ResponseEvents(context, started.model_id)
            self._send_events(_translated(started.chunks(), events))
        except BaseException:
            started.cancel()
            raise

    def _messages(self, body: Any, caller: Caller) -> None:
        """/v1/messages: the Messages request as a chat completion, its answer back as a Message."""
        version = anthropic_api.check_version(self.headers.get(anthropic_api.VERSION_HEADER))
        chat = anthropic_api.to_chat(body)
        extras = anthropic_api.extras(body) | {"anthropic_version": version}
        started = start_openai(self.server.app, "chat", chat, _noting(caller, extras))
        try:
            if not started.stream:
                self._send_json(200, anthropic_api.from_chat(started.response()))
                return
            events = anthropic_api.MessageEvents(anthropic_api.MessageIds(anthropic_api.new_id("msg"), started.model_id))
            self._send_events(_translated(started.chunks(), events))
        except BaseException:
            started.cancel()
            raise

    def _send_events(self, events: Iterator[tuple[str | None, Any]]) -> None:
        """Server-sent events: `event: NAME` when the event is named, then `data: JSON`. The first
        event is awaited before the headers, so that a request the model cannot serve still gets a
        JSON error with a 4xx status."""
        first = next(events, None)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for name, payload in itertools.chain([first] if first is not None else [], events):
            text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
            self.wfile.write((f"event: {name}\n" if name else "").encode("utf-8") + f"data: {text}\n\n".encode("utf-8"))
            self.wfile.flush()


def _noting(caller: Caller, extras: dict[str, Any]) -> Caller:
    """`caller` with a translated request's untranslated fields in its rows' meta.server.extras."""
    return replace(caller, meta=caller.meta | {"extras": bounded_value(extras, MAX_LOGGED_EXTRAS_CHARS) or None})


def _openai_events(chunks: Iterator[dict[str, Any]]) -> Iterator[tuple[str | None, Any]]:
    """OpenAI's stream: each chunk as a data-only event, an error after the first as an error
    object, and "[DONE]" at the end. An error before the first chunk is raised (a 4xx answer)."""
    first = next(chunks, None)
    try:
        if first is not None:
            yield None, first
            for chunk in chunks:
                yield None, chunk
    except ApiError as exc:
        yield None, exc.body()
        return
    yield None, "[DONE]"


def _translated(chunks: Iterator[dict[str, Any]], events: Any) -> Iterator[tuple[str | None, Any]]:
    """Chat chunks as another API's named events (responses_api.ResponseEvents or
    anthropic_api.MessageEvents): start() once the first chunk is in, feed(chunk) for each, then
    finish(), or fail(error) for an error mid-stream. An error before the first chunk is raised."""
    first = next(chunks, None)
    yield from events.start()
    try:
        for chunk in itertools.chain([first] if first is not None else [], chunks):
            yield from events.feed(chunk)
    except ApiError as exc:
        yield from events.fail(exc)
        return
    yield from events.finish()


def _collect_embedding(job: Job) -> LoggedEmbedding:
    """The one event of an embedding job (its error re-raised)."""
    found = [item for item in job.stream() if isinstance(item, LoggedEmbedding)]
    assert len(found) == 1
    return found[0]
