"""Training-data shapes: ShareGPT conversations, Alpaca instructions and plain prompt/response pairs.

Each read_* function takes one decoded record (a JSON object, or a CSV row as {column: text}) and
returns the ImportedRecord(s) it holds, or raises RecordError saying what is wrong with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.core.ingest.errors import RecordError
from app.core.ingest.records import (
    ImportedRecord,
    ReadOptions,
    content_text,
    iso_time,
    kind_of,
    need_dict,
    need_str,
    opt_str,
    split_chat,
)

# ShareGPT speakers (and the variants LLaMA-Factory and others write) -> chat roles.
SHAREGPT_ROLES = {
    "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant",
    "bard": "assistant", "bing": "assistant", "model": "assistant", "system": "system",
    "function_call": "assistant", "observation": "tool", "tool": "tool", "function": "tool",
}
# Column pairs recognized as (prompt, response), in order of preference.
PAIR_FIELDS = (
    ("prompt", "response"), ("prompt", "completion"), ("input", "output"), ("question", "answer"),
    ("instruction", "output"), ("query", "response"),
)
PAIR_NAMES = "prompt/response, prompt/completion, input/output, question/answer or instruction/output"


def read_sharegpt(value: Any, options: ReadOptions) -> list[ImportedRecord]:
    """{"conversations": [{"from", "value"}]}: one record per assistant turn, with the turns
    before it (system first) as its messages; a turn's own "model" and "started_at" (as Stillroom's
    export writes them) are used when present."""
    record = need_dict(value, "the record")
    key = "conversations" if "conversations" in record else "conversation"
    turns = record.get(key)
    if turns is None:
        raise RecordError('no "conversations" field')
    if not isinstance(turns, list):
        raise RecordError(f"conversations should be a list, got {kind_of(turns)}")
    history: list[dict[str, Any]] = []
    system = opt_str(record.get("system"), "system")
    if system:
        history.append({"role": "system", "content": system})
    model = opt_str(record.get("model"), "model")
    origin: dict[str, Any] = {}
    if isinstance(record.get("id"), (str, int)) and not isinstance(record.get("id"), bool):
        origin["id"] = record["id"]
    results: list[ImportedRecord] = []
    for i, raw in enumerate(turns, 1):
        turn = need_dict(raw, f"conversations[{i}]")
        speaker = need_str(turn.get("from", turn.get("role")), f"conversations[{i}].from")
        role = SHAREGPT_ROLES.get(speaker.strip().lower())
        if role is None:
            raise RecordError(f"conversations[{i}] is from {speaker[:40]!r}; expected human, gpt or system")
        if "value" in turn:
            text = need_str(turn["value"], f"conversations[{i}].value")
        else:
            text = content_text(turn.get("content"), f"conversations[{i}].value") or ""
        if role == "assistant" and speaker.strip().lower() != "function_call":
            system_prompt, prompt = split_chat(history)
            results.append(ImportedRecord(
                mode="chat", messages=list(history), system_prompt=system_prompt, prompt=prompt,
                response=text, model_name=opt_str(turn.get("model"), f"conversations[{i}].model") or model,
                started_at=_turn_time(turn, i), origin={**origin, "turn": i},
            ))
        history.append({"role": role, "content": text})
    if not results:
        raise RecordError("the conversation has no assistant (gpt) turn to import")
    return results


def _turn_time(turn: dict[str, Any], i: int) -> str | None:
    """When a turn's generation started, where the file says (Stillroom's export does)."""
    value = turn.get("started_at")
    if value is None:
        return None
    found = iso_time(value) if isinstance(value, str) else None
    if found is None:
        raise RecordError(f"conversations[{i}].started_at should be an ISO 8601 time, got {kind_of(value)}")
    return found


def read_alpaca(value: Any, options: ReadOptions) -> list[ImportedRecord]:
    """{instruction, input, output} (+ optional system and LLaMA-Factory's history of [q, a]):
    the prompt is the instruction, then a blank line and the input when there is one."""
    record = need_dict(value, "the record")
    instruction = need_str(record.get("instruction"), "instruction")
    extra = opt_str(record.get("input"), "input") or ""
    output = need_str(record.get("output"), "output")
    prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    system = opt_str(record.get("system"), "system") or None
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    history = record.get("history")
    if history is not None:
        if not isinstance(history, list):
            raise RecordError(f"history should be a list of [question, answer], got {kind_of(history)}")
        for i, pair in enumerate(history, 1):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
                raise RecordError(f"history[{i}] should be [question, answer]")
            messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    messages.append({"role": "user", "content": prompt})
    return [ImportedRecord(mode="chat", messages=messages, system_prompt=system, prompt=prompt,
                           response=output, model_name=opt_str(record.get("model"), "model") or None)]


def pair_fields(keys: Iterable[str]) -> tuple[str, str] | None:
    """The (prompt, response) field names among `keys` (case-insensitive), or None."""
    lowered = {key.strip().lower(): key for key in keys if isinstance(key, str)}
    for prompt, response in PAIR_FIELDS:
        if prompt in lowered and response in lowered:
            return lowered[prompt], lowered[response]
    return None


def _field(record: dict[str, Any], name: str) -> str | None:
    """The key of `record` that is `name`, exactly or ignoring case."""
    if name in record:
        return name
    lowered = name.strip().lower()
    return next((key for key in record if isinstance(key, str) and key.strip().lower() == lowered), None)


def read_pairs(value: Any, options: ReadOptions) -> list[ImportedRecord]:
    """A prompt and a response under recognized names, or the names given in the options (a
    prompt field alone imports prompts without responses)."""
    record = need_dict(value, "the record")
    if options.prompt_field:
        prompt_key = _field(record, options.prompt_field)
        if prompt_key is None:
            raise RecordError(f'no "{options.prompt_field}" field')
        response_key = None
        if options.response_field:
            response_key = _field(record, options.response_field)
            if response_key is None:
                raise RecordError(f'no "{options.response_field}" field')
    else:  # the fields that carry values first: {"prompt": null, "question": ...} is a question
        found = pair_fields(key for key, item in record.items() if item is not None) or pair_fields(record)
        if found is None:
            raise RecordError(f"no prompt and response fields (expected {PAIR_NAMES})")
        prompt_key, response_key = found
    prompt = need_str(record[prompt_key], prompt_key)
    response = need_str(record[response_key], response_key) if response_key else None
    system_key = _field(record, "system") or _field(record, "system_prompt")
    system = (opt_str(record.get(system_key), system_key) or None) if system_key else None
    model_key = _field(record, "model")
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return [ImportedRecord(mode="chat", messages=messages, system_prompt=system, prompt=prompt, response=response,
                           model_name=(opt_str(record.get(model_key), model_key) or None) if model_key else None)]
