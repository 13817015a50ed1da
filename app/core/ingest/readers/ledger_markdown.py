"""Stillroom's Markdown log export (`stillroom log export --format markdown`) read back.

The export is written for people, but exactly: each generation is a `## Generation N` section with
`- started:`, `- model:` (the name as JSON), `- mode:` and `- source: ..., status: ...` lines, then
one `### role` heading per turn with its text in a code fence longer than any run of backticks in
the text, the last turn being the response. MarkdownExportSource yields each section as a ledger-
row-like dict (started_at, model_name, mode, status, system_prompt, prompt, response, messages);
read_markdown_row turns it into the generation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from app.core.ingest.containers import Issue, RawRecord, Source
from app.core.ingest.errors import RecordError
from app.core.ingest.records import ImportedRecord, ReadOptions, iso_time, kind_of, need_dict, opt_str, split_chat

HEADING = "# Stillroom ledger export"
_SECTION = re.compile(r"^## Generation (\d+)$")
_ROLE = re.compile(r"^### (\S.*)$")
_FENCE = re.compile(r"^(`{3,})text$")
_MODEL = re.compile(r"^- model: (.*) \(sha256 [0-9a-f]*\)$")
_STATUS = re.compile(r"^- source: .*, status: (ok|cancelled|error)$")


class MarkdownExportSource(Source):
    """The `## Generation` sections of a Markdown export, as dicts (Issue for a broken section)."""

    unit = "generation"

    def __iter__(self) -> Iterator[RawRecord | Issue]:
        with self.path.open("r", encoding="utf-8", errors="strict", newline="") as handle:
            position = 0
            section: dict[str, Any] | None = None
            try:
                lines = iter(handle)
                first = next(lines, "")
                self.done += len(first.encode("utf-8"))
                if first.rstrip("\r\n").lstrip("\ufeff") != HEADING:
                    yield Issue(1, self.unit, f'the file does not start with "{HEADING}"')
                    return
                for line in lines:
                    self.done += len(line.encode("utf-8"))
                    bare = line.rstrip("\r\n")
                    header = _SECTION.match(bare)
                    if header:
                        if section is not None:
                            yield _finish(position, section, self.unit)
                        position += 1
                        section = {"id": int(header.group(1)), "turns": []}
                        continue
                    if section is None or "broken" in section:
                        if section is None and bare.strip():
                            section = {"broken": f"text before the first generation: {bare[:40]!r}", "turns": []}
                            position += 1
                        continue
                    role = _ROLE.match(bare)
                    if role:
                        section["turns"].append({"role": role.group(1), "content": None})
                    elif _FENCE.match(bare) and section["turns"] and section["turns"][-1]["content"] is None:
                        section["turns"][-1]["content"] = _fenced(lines, _FENCE.match(bare).group(1), self)
                    elif not section["turns"]:
                        _field(section, bare)
                    elif bare.strip():
                        section["broken"] = f"unexpected text between turns: {bare[:40]!r}"
            except UnicodeDecodeError as exc:
                yield Issue(position + 1, self.unit, f"not UTF-8 text from here on ({exc.reason})")
                return
            except ValueError as exc:  # an unclosed fence
                if section is not None:
                    section["broken"] = str(exc)
            if section is not None:
                yield _finish(position, section, self.unit)


def _fenced(lines: Iterator[str], fence: str, source: MarkdownExportSource) -> str:
    """The text of a code block up to its closing fence (the newline before the fence is the writer's)."""
    body: list[str] = []
    for line in lines:
        source.done += len(line.encode("utf-8"))
        if line in (fence + "\n", fence):
            text = "".join(body)
            return text[:-1] if text.endswith("\n") else text
        body.append(line)
    raise ValueError(f"a code block opened with {fence} is never closed")


def _field(section: dict[str, Any], line: str) -> None:
    """One `- name: value` line of a section's header."""
    if not line.strip():
        return
    if line.startswith("- started: "):
        section["started_at"] = line[len("- started: "):]
    elif line.startswith("- mode: "):
        section["mode"] = line[len("- mode: "):]
    elif line.startswith("- model: "):
        found = _MODEL.match(line)
        try:
            section["model_name"] = json.loads(found.group(1)) if found else None
        except ValueError:
            found = None
        if found is None:
            section["broken"] = f"the model line is not as Stillroom writes it: {line[:60]!r}"
    elif line.startswith("- source: "):
        status = _STATUS.match(line)
        if status is None:
            section["broken"] = f"the source line names no status: {line[:60]!r}"
        else:
            section["status"] = status.group(1)
    elif not line.startswith("- tokens: "):
        section["broken"] = f"unexpected line in the header: {line[:40]!r}"


def _finish(position: int, section: dict[str, Any], unit: str) -> RawRecord | Issue:
    """The section as a ledger-row-like dict, or an Issue naming what is wrong with it."""
    if "broken" in section:
        return Issue(position, unit, section["broken"])
    turns = section["turns"]
    if not turns or any(turn["content"] is None for turn in turns):
        return Issue(position, unit, f"generation {section['id']}: a turn has no text block")
    if turns[-1]["role"] != "assistant":
        return Issue(position, unit, f"generation {section['id']}: the last turn is not the assistant's response")
    history = [{"role": turn["role"], "content": turn["content"]} for turn in turns[:-1]]
    system, prompt = split_chat(history)
    record = {key: section.get(key) for key in ("id", "started_at", "model_name", "mode", "status")}
    record.update(system_prompt=system, prompt=prompt, response=turns[-1]["content"],
                  messages=history if section.get("mode") == "chat" else None)
    return RawRecord(position, record)


def read_markdown_row(value: Any, options: ReadOptions) -> list[ImportedRecord]:
    """One generation of a Markdown export (as MarkdownExportSource reads it)."""
    row = need_dict(value, "the generation")
    started = row.get("started_at")
    started_at = iso_time(started) if isinstance(started, str) else None
    if started_at is None:
        raise RecordError(f"started should be an ISO 8601 time, got {kind_of(started)}")
    mode = opt_str(row.get("mode"), "mode")
    if mode not in ("chat", "completion"):
        raise RecordError(f"mode should be chat or completion, got {mode!r:.40}")
    return [ImportedRecord(
        mode=mode, messages=row.get("messages") or None, system_prompt=opt_str(row.get("system_prompt"), "system"),
        prompt=opt_str(row.get("prompt"), "prompt"), response=opt_str(row.get("response"), "response"),
        model_name=opt_str(row.get("model_name"), "model"), started_at=started_at,
        status=opt_str(row.get("status"), "status") or "ok",
        origin={"ledger_id": row["id"]} if isinstance(row.get("id"), int) else {},
    )]


def is_markdown_export(head: bytes) -> bool:
    """True when a file's first bytes are the Markdown export's heading line."""
    text = head.lstrip(b"\xef\xbb\xbf")
    return text.startswith(HEADING.encode("ascii") + b"\n") or text.startswith(HEADING.encode("ascii") + b"\r\n")


__all__ = ["HEADING", "MarkdownExportSource", "is_markdown_export", "read_markdown_row"]

