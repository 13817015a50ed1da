"""OpenAI's /v1/embeddings: request parsing and the response shape.

parse_embeddings turns a JSON body into an EmbeddingRequest or raises ApiError naming the field.
Inputs are text: a string or a list of strings. Token arrays (lists of integers) are refused,
since a token id means nothing without the tokenizer the client had in mind. `dimensions` is
accepted only when it asks for the model's own size: the served models are not trained to be
shortened (Matryoshka), so cutting their vectors would quietly make them worse.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.embedding import EmbeddingRequest
from app.core.serve.openai_api import ApiError

MAX_INPUTS = 2048  # as OpenAI's own limit
MAX_TOTAL_CHARS = 1_000_000  # of all inputs together
ENCODING_FORMATS = ("float", "base64")
KNOWN_KEYS = {"model", "input", "encoding_format", "dimensions", "user"}


@dataclass(frozen=True)
class ParsedEmbeddings:
    """A validated embeddings request."""

    model: str
    request: EmbeddingRequest
    encoding_format: str
    dimensions: int | None
    extras: dict[str, Any]


def _inputs(raw: Any) -> list[str]:
    if isinstance(raw, str):
        texts = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(item, str) for item in raw):
        texts = list(raw)
    elif isinstance(raw, list) and raw and all(isinstance(item, (int, list)) and not isinstance(item, bool)
                                               for item in raw):
        raise ApiError(400, "'input' as token arrays is not supported: send the text itself (a string or a "
                            "list of strings)", "input", "unsupported_input")
    elif isinstance(raw, list) and not raw:
        raise ApiError(400, "'input' must not be an empty list", "input", "invalid_value")
    else:
        raise ApiError(400, "'input' must be a string or a list of strings", "input", "invalid_type")
    if len(texts) > MAX_INPUTS:
        raise ApiError(400, f"'input' has {len(texts)} items; at most {MAX_INPUTS} go in one request", "input",
                       "too_many_inputs")
    total = 0
    for index, text in enumerate(texts):
        if not text.strip():
            raise ApiError(400, f"input[{index}] is empty; every input needs some text", "input", "invalid_value")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ApiError(400, f"input[{index}] is not valid Unicode text (a lone surrogate at position "
                                f"{exc.start})", "input", "invalid_value") from exc
        total += len(text)
    if total > MAX_TOTAL_CHARS:
        raise ApiError(400, f"'input' holds {total} characters; at most {MAX_TOTAL_CHARS} go in one request",
                       "input", "input_too_large")
    return texts


def parse_embeddings(body: Any, native_dimensions: int | None) -> ParsedEmbeddings:
    """Validate an /v1/embeddings body for a model whose vectors have `native_dimensions` (None:
    not known before it runs, so `dimensions` is checked against the answer)."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", None, "invalid_json")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "'model' is required", "model", "missing_required_parameter")
    if "input" not in body:
        raise ApiError(400, "'input' is required", "input", "missing_required_parameter")
    texts = _inputs(body["input"])
    encoding = body.get("encoding_format") or "float"
    if encoding not in ENCODING_FORMATS:
        raise ApiError(400, "'encoding_format' must be float or base64", "encoding_format", "invalid_value")
    dimensions = body.get("dimensions")
    if dimensions is not None:
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
            raise ApiError(400, "'dimensions' must be a positive integer", "dimensions", "invalid_type")
        check_dimensions(dimensions, native_dimensions)
    params = {"encoding_format": encoding, "dimensions": dimensions}
    extras = {key: value for key, value in body.items() if key not in KNOWN_KEYS}
    return ParsedEmbeddings(model, EmbeddingRequest(texts, params), encoding, dimensions, extras)


def check_dimensions(asked: int | None, native: int | None) -> None:
    """Refuse (400) a `dimensions` other than the model's own."""
    if asked is not None and native is not None and asked != native:
        raise ApiError(400, f"'dimensions' {asked} is not supported: this model's vectors have {native} "
                            "dimensions and it is not trained to be shortened", "dimensions",
                       "unsupported_parameter")


def embeddings_response(vectors: np.ndarray, encoding: str, model_id: str, prompt_tokens: int,
                        generation_id: int) -> dict[str, Any]:
    """OpenAI's embeddings list; base64 is the float32 little-endian bytes of each vector."""
    data = []
    for index, vector in enumerate(vectors):
        if encoding == "base64":
            value: Any = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
        else:
            value = [float(x) for x in vector]
        data.append({"object": "embedding", "index": index, "embedding": value})
    return {"object": "list", "data": data, "model": model_id,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
            "stillroom": {"generation_ids": [generation_id]}}
