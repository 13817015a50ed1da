"""Dataset shapes: which fields hold the prompt and the response, told from the keys of a record
that carry values (a key holding null, "" or [] says nothing) or named by hand, and one record
turned into its (prompt, response).

Alpaca, ShareGPT and OpenAI messages records go through the import's own readers, so a row's
prompt is built exactly as an imported record's is (Alpaca: the instruction, then a blank line and
the input when there is one; chats: the last user message, the last assistant message).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from app.core.ingest.errors import RecordError
from app.core.ingest.readers.datasets import PAIR_FIELDS as IMPORT_PAIR_FIELDS
from app.core.ingest.readers.datasets import read_alpaca, read_sharegpt
from app.core.ingest.readers.openai import read_messages
from app.core.ingest.records import ReadOptions, kind_of

KINDS = ("prompt_response", "alpaca", "sharegpt", "openai_messages", "custom")
KIND_NAMES = {
    "prompt_response": "prompt/response pairs",
    "alpaca": "Alpaca (instruction, input, output)",
    "sharegpt": "ShareGPT conversations",
    "openai_messages": "OpenAI chat messages",
    "custom": "fields named by hand",
}
# Field pairs recognized as (prompt, response), in order of preference: the import's, then more.
PAIR_FIELDS: tuple[tuple[str, str], ...] = IMPORT_PAIR_FIELDS + (
    ("text", "completion"), ("prompt", "output"), ("prompt", "answer"), ("question", "response"),
    ("instruction", "response"), ("input", "response"), ("query", "answer"), ("input", "target"),
    ("source", "target"),
)
FIELD_ROLES = ("prompt", "response", "input", "system", "messages", "conversations")
EXPECTED = ("expected records with prompt/response fields (or instruction/output, question/answer, "
            "input/output, text/completion), Alpaca instruction/input/output, ShareGPT "
            '"conversations" or OpenAI "messages"; or name the fields by hand')


class ShapeError(ValueError):
    """The sampled records fit no known shape, or the hand-named fields are not in the file."""


def column_types(records: list[Any], columns: tuple[str, ...], csv: bool) -> dict[str, str]:
    """column -> text | integer | float | boolean | json, from the sampled values (best effort)."""
    types: dict[str, str] = {}
    for name in columns:
        seen = {_value_type(record.get(name), csv) for record in records
                if isinstance(record, dict) and record.get(name) not in (None, "")}
        if not seen:
            types[name] = "text"
        elif len(seen) == 1:
            types[name] = seen.pop()
        elif seen == {"integer", "float"}:
            types[name] = "float"
        else:
            types[name] = "json" if "json" in seen else "text"
    return types


def _value_type(value: Any, csv: bool) -> str:
    if csv and isinstance(value, str):
        text = value.strip()
        if text.lower() in ("true", "false"):
            return "boolean"
        for kind, convert in (("integer", int), ("float", float)):
            try:
                convert(text)
                return kind
            except ValueError:
                pass
        return "text"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "text"
    return "json"


def lookup(columns: tuple[str, ...], name: str) -> str | None:
    """The column that is `name`, exactly or ignoring case and surrounding space."""
    if name in columns:
        return name
    low = name.strip().lower()
    return next((column for column in columns if column.strip().lower() == low), None)


def shape_of(sample: list[Any], columns: tuple[str, ...],
             fields: dict[str, str]) -> tuple[str, dict[str, str]]:
    """(kind, role -> field) from hand-named fields, else from what most sampled records look like;
    ShapeError saying what does not fit."""
    if fields:
        found: dict[str, str] = {}
        for role, name in fields.items():
            column = lookup(columns, name)
            if column is None:
                raise ShapeError(f'no field "{name}" (named for the {role}); '
                                   f"the file has: {', '.join(columns) or 'no named fields'}")
            found[role] = column
        if "messages" in found:
            return "openai_messages", found
        if "conversations" in found:
            return "sharegpt", found
        if "prompt" not in found or "response" not in found:
            raise ShapeError("name both the prompt and the response field "
                             "(or a messages or conversations field)")
        return ("alpaca" if "input" in found else "custom"), found
    votes: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
    for record in sample:
        if isinstance(record, dict):
            seen = guess_record(record)
            if seen is not None:
                votes[(seen[0], tuple(seen[1].items()))] += 1
    if not votes:
        first = next((r for r in sample if isinstance(r, dict)), None)
        detail = (f"its first record has the fields: {', '.join(map(str, list(first)[:12])) or 'none'}"
                  if first is not None else f"its first record is {kind_of(sample[0])}, not an object")
        raise ShapeError(f"not a dataset shape Stillroom knows: {detail}; {EXPECTED}")
    (kind, pairs), _ = votes.most_common(1)[0]
    return kind, dict(pairs)


def carried_keys(record: dict[Any, Any]) -> tuple[str, ...]:
    """The keys of `record` whose values carry something: not null, not blank text, not an empty
    list or object (an export's `"messages": null` must not make a record look like a chat)."""
    return tuple(str(key) for key, value in record.items() if _carries(value))


def _carries(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())  # a CSV cell is "" where JSON would say null
    if isinstance(value, (list, dict)):
        return bool(value)
    return True


def guess_record(record: dict[Any, Any]) -> tuple[str, dict[str, str]] | None:
    """The shape one record suggests, from the keys that carry values. A record with both a
    request's messages (not ending with the assistant's answer) and a prompt/response pair, as
    a ledger export's chat rows are, is read as the pair: its messages hold no response."""
    keys = carried_keys(record)
    found = guess(keys)
    if found is not None and found[0] == "openai_messages" and not _ends_with_answer(record[found[1]["messages"]]):
        pair = guess(tuple(key for key in keys if key != found[1]["messages"]))
        if pair is not None and pair[0] in ("prompt_response", "alpaca"):
            return pair
    return found


def _ends_with_answer(messages: Any) -> bool:
    """True when a messages list ends with an assistant message."""
    if isinstance(messages, str) and messages.lstrip().startswith("["):
        try:
            messages = json.loads(messages)
        except ValueError:
            return False
    return (isinstance(messages, list) and bool(messages) and isinstance(messages[-1], dict)
            and messages[-1].get("role") == "assistant")


def guess(keys: tuple[str, ...]) -> tuple[str, dict[str, str]] | None:
    """The shape a record's keys (those that carry values: see carried_keys) suggest, with its
    fields, or None."""
    messages = lookup(keys, "messages")
    if messages:
        return "openai_messages", {"messages": messages}
    conversations = lookup(keys, "conversations") or lookup(keys, "conversation")
    if conversations:
        return "sharegpt", {"conversations": conversations}
    instruction, output = lookup(keys, "instruction"), lookup(keys, "output")
    if instruction and output:
        found = {"prompt": instruction, "response": output}
        extra = lookup(keys, "input")
        if extra:
            found["input"] = extra
        return "alpaca", found
    for prompt, response in PAIR_FIELDS:
        p, r = lookup(keys, prompt), lookup(keys, response)
        if p and r:
            return "prompt_response", {"prompt": p, "response": r}
    return None


def extract(value: Any, kind: str, fields: dict[str, str]) -> tuple[str, str]:
    """(prompt, response) of one decoded record; RecordError saying what is wrong with it."""
    if not isinstance(value, dict):
        raise RecordError(f"the record should be an object, got {kind_of(value)}")
    options = ReadOptions()
    if kind in ("openai_messages", "sharegpt"):
        role = "messages" if kind == "openai_messages" else "conversations"
        turns = _maybe_json(value.get(fields[role]), fields[role])
        record = {role: turns}
        if "system" in fields and value.get(fields["system"]) is not None:
            record["system"] = value[fields["system"]]
        if kind == "openai_messages":
            found = read_messages(record, options)[-1]
            if found.response is None:
                raise RecordError("the last message is not the assistant's: no response")
        else:
            found = read_sharegpt(record, options)[-1]
        return found.prompt or "", found.response or ""
    if fields["prompt"] not in value:
        raise RecordError(f'no "{fields["prompt"]}" field')
    if fields["response"] not in value:
        raise RecordError(f'no "{fields["response"]}" field')
    if kind == "alpaca":
        record = {"instruction": value[fields["prompt"]], "output": value[fields["response"]],
                  "input": value.get(fields["input"]) if "input" in fields else None}
        found = read_alpaca(record, options)[0]
        return found.prompt or "", found.response or ""
    return _text(value[fields["prompt"]], fields["prompt"]), _text(value[fields["response"]], fields["response"])


def _text(value: Any, name: str) -> str:
    if isinstance(value, str):
        return value
    raise RecordError(f"{name} should be text, got {kind_of(value)}")


def _maybe_json(value: Any, name: str) -> Any:
    """A list given as JSON text (a CSV cell) decoded; anything else as it is."""
    if value is None:
        raise RecordError(f'no "{name}" field')
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise RecordError(f"{name} is not valid JSON ({exc})") from exc
    return value


__all__ = ["EXPECTED", "FIELD_ROLES", "KINDS", "KIND_NAMES", "PAIR_FIELDS", "ShapeError", "carried_keys",
           "column_types", "extract", "guess", "guess_record", "lookup", "shape_of"]
