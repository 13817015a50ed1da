"""Load and validate Stillroom's distillation-pattern library (Qt-free).

The library lives in ``resources/patterns/``: ``library.yaml`` (version, changelog, the pattern
ids, known limitations) and one ``<id>.yaml`` per pattern; ``resources/patterns/README.md``
describes the schema. Loading is strict: any problem raises :class:`PatternLibraryError` naming
the file and what is wrong, so a broken library never reaches an audit.
:attr:`PatternLibrary.content_hash` lets an audit record exactly which library it used. What the
library is made of (patterns, cues, the library object) is in pattern_types; its names are
importable from here too.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Callable

import yaml

from app.core.audit.cue_prefilter import required_literals
from app.core.audit.pattern_types import (
    CUE_FED_SIGNALS, DATE_RE, DEFAULT_LIBRARY_DIR, ID_RE, LANGUAGE_RE, LIBRARY_FILE, LIBRARY_KEYS, MIN_BENIGN_EXEMPLARS,
    MIN_EXEMPLARS, NUMERIC_OPS, OPS, OPTIONAL_LIBRARY_KEYS, OPTIONAL_PATTERN_KEYS, PARAM_FIELDS, PATTERN_KEYS,
    PATTERN_SUFFIX, REGEX_FLAGS, SEMVER_RE, SHORT_NAME_MAX, WORKFLOW_SIGNALS, BenignLookalike, ParamCue, Pattern,
    PatternLibrary, PatternLibraryError, PromptCue, Source, Translation, WorkflowCue, _is_number)
from app.core.audit.translations import TRANSLATIONS_FILE, parse_translations, read_translations

__all__ = ["CUE_FED_SIGNALS", "DEFAULT_LIBRARY_DIR", "LIBRARY_FILE", "MIN_BENIGN_EXEMPLARS", "MIN_EXEMPLARS",
           "WORKFLOW_SIGNALS", "BenignLookalike", "ParamCue", "Pattern", "PatternLibrary", "PatternLibraryError",
           "PromptCue", "Source", "Translation", "WorkflowCue", "load_library"]


class _Checker:
    """Validation helpers that raise :class:`PatternLibraryError` for one file."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, problem: str) -> PatternLibraryError:
        return PatternLibraryError(self.file, problem)

    def mapping(self, data: Any, where: str, required: tuple[str, ...],
                optional: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(f"{where} must be a mapping")
        for label, keys in (("missing", [k for k in required if k not in data]),
                            ("unknown", sorted(map(str, set(data) - set(required) - set(optional))))):
            if keys:
                raise self.fail(f"{where}: {label} key(s) {', '.join(keys)}")
        return data

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where} must be a non-empty string")
        return value.strip()

    def items(self, value: Any, where: str, allow_empty: bool = False) -> list[Any]:
        if not isinstance(value, list) or (not value and not allow_empty):
            raise self.fail(f"{where} must be a {'' if allow_empty else 'non-empty '}list")
        return value

    def cue(self, d: dict[str, Any], where: str) -> dict[str, Any]:
        """Check what every cue has (id, description, weight) and, if present, its op and value."""
        weight = d["weight"]
        if not _is_number(weight) or not 0 <= weight <= 1:
            raise self.fail(f"{where}: weight must be a number between 0 and 1")
        out = {"id": self.text(d["id"], f"{where}.id"), "weight": float(weight),
               "description": self.text(d["description"], f"{where}.description")}
        if "op" not in d:
            return out
        op, value = d["op"], d.get("value")
        if op not in OPS:
            raise self.fail(f"{where}: unknown op {op!r} (expected one of {sorted(OPS)})")
        if (op in NUMERIC_OPS and not _is_number(value)) or (op == "in" and not isinstance(value, list)):
            raise self.fail(f"{where}: op {op!r} needs a {'list' if op == 'in' else 'numeric'} value")
        if op == "truthy" and value is not None and value is not True:
            raise self.fail(f"{where}: op 'truthy' takes no value")
        if op in ("eq", "ne") and "value" not in d:
            raise self.fail(f"{where}: op {op!r} needs a value")
        return {**out, "op": op, "value": value}


def _source(c: _Checker, raw: Any, where: str) -> Source:
    d = c.mapping(raw, where, ("title", "publisher", "date"), ("reported_by", "url", "note"))
    date = d["date"].isoformat() if isinstance(d["date"], _dt.date) else d["date"]
    if not isinstance(date, str) or not DATE_RE.match(date):
        raise c.fail(f"{where}: date must be YYYY-MM-DD (or YYYY-MM / YYYY), got {date!r}")
    reported = d.get("reported_by") or []
    if not isinstance(reported, list) or not all(isinstance(r, str) and r for r in reported):
        raise c.fail(f"{where}: reported_by must be a list of strings")
    url = d.get("url")
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise c.fail(f"{where}: url must be an http(s) address")
    note = c.text(d["note"], f"{where}.note") if d.get("note") is not None else None
    return Source(c.text(d["title"], f"{where}.title"), c.text(d["publisher"], f"{where}.publisher"),
                  date, tuple(reported), url, note)


def _prompt_cue(c: _Checker, raw: Any, where: str) -> PromptCue:
    d = c.mapping(raw, where, ("id", "description", "regex", "weight"), ("languages",))
    base, regex = c.cue(d, where), c.text(d["regex"], f"{where}.regex")
    languages = d.get("languages") or []
    if not isinstance(languages, list) or not all(isinstance(x, str) and LANGUAGE_RE.match(x) for x in languages):
        raise c.fail(f"{where} ({base['id']}): languages must be a list of language codes (es, de, zh, ...)")
    try:
        compiled = re.compile(regex, REGEX_FLAGS)
    except re.error as exc:
        raise c.fail(f"{where} ({base['id']}): bad regex: {exc}") from exc
    if compiled.search("") is not None:
        raise c.fail(f"{where} ({base['id']}): regex matches the empty string")
    return PromptCue(regex=regex, compiled=compiled, languages=tuple(languages),
                     literals=required_literals(regex, REGEX_FLAGS), **base)


def _param_cue(c: _Checker, raw: Any, where: str) -> ParamCue:
    d = c.mapping(raw, where, ("id", "description", "field", "op", "weight"), ("value",))
    name = c.text(d["field"], f"{where}.field")
    if name.split(".")[0] not in PARAM_FIELDS:
        raise c.fail(f"{where}: unknown request field {name!r} (expected one of {sorted(PARAM_FIELDS)})")
    return ParamCue(field=name, **c.cue(d, where))


def _workflow_cue(c: _Checker, raw: Any, where: str) -> WorkflowCue:
    d = c.mapping(raw, where, ("id", "description", "signal", "op", "weight"), ("value", "evidence"))
    if d["signal"] not in WORKFLOW_SIGNALS:
        raise c.fail(f"{where}: unknown signal {d['signal']!r} (expected one of {sorted(WORKFLOW_SIGNALS)})")
    if d.get("evidence") not in (None, True, False):
        raise c.fail(f"{where}: evidence must be true or false")
    return WorkflowCue(signal=d["signal"], evidence=d.get("evidence"), **c.cue(d, where))


def _lookalike(c: _Checker, raw: Any, where: str) -> BenignLookalike:
    d = c.mapping(raw, where, ("name", "description", "how_to_tell"))
    return BenignLookalike(*(c.text(d[k], f"{where}.{k}") for k in ("name", "description", "how_to_tell")))


def _prompts(c: _Checker, raw: Any, key: str, minimum: int) -> tuple[str, ...]:
    prompts = tuple(c.text(p, f"{key}[{i}]") for i, p in enumerate(c.items(raw, key)))
    if len(prompts) < minimum:
        raise c.fail(f"{key}: {len(prompts)} prompts, at least {minimum} required")
    return prompts


def _short_name(c: _Checker, raw: Any) -> str:
    name = c.text(raw, "short_name")
    if "\n" in name or len(name) > SHORT_NAME_MAX:
        raise c.fail(f"short_name must be one line of at most {SHORT_NAME_MAX} characters, got {name!r}")
    return name


def _feeds_signals(c: _Checker, raw: Any, has_prompt_cues: bool) -> tuple[str, ...]:
    names = c.items(raw, "feeds_signals", allow_empty=True)
    unknown = [n for n in names if not isinstance(n, str) or n not in CUE_FED_SIGNALS]
    if unknown:
        raise c.fail(f"feeds_signals: unknown signal(s) {', '.join(map(repr, unknown))} "
                     f"(expected some of {sorted(CUE_FED_SIGNALS)})")
    if len(set(names)) != len(names):
        raise c.fail("feeds_signals: a signal is named twice")
    if names and not has_prompt_cues:
        raise c.fail("feeds_signals needs prompt_cues: the signals count generations on which they fire")
    return tuple(names)


def _pattern(path: Path, data: Any, expected_id: str) -> Pattern:
    """Validate one pattern file's parsed content and build its :class:`Pattern`."""
    c = _Checker(path.name)
    d = c.mapping(data, "pattern", PATTERN_KEYS, OPTIONAL_PATTERN_KEYS)
    if d["id"] != expected_id:
        raise c.fail(f"id {d['id']!r} does not match the file name (expected {expected_id!r})")
    if not isinstance(d["version"], int) or isinstance(d["version"], bool) or d["version"] < 1:
        raise c.fail("version must be a positive integer")
    summary = c.text(d["summary"], "summary")
    if "\n" in summary:
        raise c.fail("summary must be one line")

    def build(key: str, maker: Callable[[_Checker, Any, str], Any], allow_empty: bool = True) -> tuple[Any, ...]:
        return tuple(maker(c, r, f"{key}[{i}]") for i, r in enumerate(c.items(d[key], key, allow_empty)))

    prompt_cues, param_cues = build("prompt_cues", _prompt_cue), build("param_cues", _param_cue)
    workflow_cues = build("workflow_cues", _workflow_cue)
    cue_ids = [cue.id for cue in (*prompt_cues, *param_cues, *workflow_cues)]
    if not cue_ids:
        raise c.fail("a pattern needs at least one cue")
    duplicates = sorted({i for i in cue_ids if cue_ids.count(i) > 1})
    if duplicates:
        raise c.fail(f"duplicate cue id(s) {', '.join(duplicates)}")
    limitations = d.get("limitations")
    parameter_driven = d.get("parameter_driven", False)
    if not isinstance(parameter_driven, bool):
        raise c.fail(f"parameter_driven must be true or false, got {parameter_driven!r}")
    if parameter_driven and not param_cues:
        raise c.fail("parameter_driven needs param_cues: without them the pattern could never reach a hit")
    return Pattern(
        id=d["id"], name=c.text(d["name"], "name"), short_name=_short_name(c, d["short_name"]),
        version=d["version"], summary=summary,
        definition=c.text(d["definition"], "definition"), why_flagged=c.text(d["why_flagged"], "why_flagged"),
        sources=build("sources", _source, False), prompt_cues=prompt_cues, param_cues=param_cues,
        workflow_cues=workflow_cues, benign_lookalikes=build("benign_lookalikes", _lookalike, False),
        exemplars=_prompts(c, d["exemplars"], "exemplars", MIN_EXEMPLARS),
        benign_exemplars=_prompts(c, d["benign_exemplars"], "benign_exemplars", MIN_BENIGN_EXEMPLARS),
        limitations=c.text(limitations, "limitations") if limitations is not None else None, file=path.name,
        parameter_driven=parameter_driven,
        feeds_signals=_feeds_signals(c, d.get("feeds_signals", []), bool(prompt_cues)))


def _check_unique_short_names(patterns: list[Pattern]) -> None:
    """Two columns of a report must not share a title."""
    seen: dict[str, str] = {}
    for pattern in patterns:
        key = pattern.short_name.casefold()
        if key in seen:
            raise PatternLibraryError(pattern.file, f"short_name {pattern.short_name!r} is already used by {seen[key]}")
        seen[key] = pattern.file


def _check_unique_prompts(patterns: list[Pattern]) -> None:
    """Every exemplar and benign exemplar must be unique (case/whitespace-insensitive) library-wide."""
    seen: dict[str, str] = {}
    for pattern in patterns:
        for key in ("exemplars", "benign_exemplars"):
            for i, prompt in enumerate(getattr(pattern, key)):
                norm = " ".join(prompt.casefold().split())
                if norm in seen:
                    raise PatternLibraryError(pattern.file, f"{key}[{i}] duplicates {seen[norm]}: {prompt[:60]!r}")
                seen[norm] = f"{pattern.file} {key}[{i}]"


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PatternLibraryError(path.name, f"cannot read YAML: {exc}") from exc


def load_library(path: Path | None = None) -> PatternLibrary:
    """Load, validate and hash the pattern library in ``path`` (default: the repository's copy).

    ``content_hash`` is a sha256 over the canonical JSON of every file's parsed content, so it is
    stable across line endings, comments and formatting. Raises :class:`PatternLibraryError`
    naming the file and the problem when anything is wrong.
    """
    root = Path(path) if path is not None else DEFAULT_LIBRARY_DIR
    c = _Checker(LIBRARY_FILE)
    if not (root / LIBRARY_FILE).is_file():
        raise c.fail(f"not found in {root}")
    raw_library = _load_yaml(root / LIBRARY_FILE)
    lib = c.mapping(raw_library, "library", LIBRARY_KEYS, OPTIONAL_LIBRARY_KEYS)
    version = lib["version"]
    if not isinstance(version, str) or not SEMVER_RE.match(version):
        raise c.fail(f"version must be a quoted semver string like '1.0.0', got {version!r}")
    changelog = c.items(lib["changelog"], "changelog")
    for i, entry in enumerate(changelog):
        c.mapping(entry, f"changelog[{i}]", ("version", "date", "changes"))
    if str(changelog[0]["version"]) != version:
        raise c.fail(f"the first changelog entry ({changelog[0]['version']!r}) must be the current version")
    ids = [c.text(i, "patterns[]") for i in c.items(lib["patterns"], "patterns")]
    bad = [i for i in ids if not ID_RE.match(i)] or sorted({i for i in ids if ids.count(i) > 1})
    if bad:
        raise c.fail(f"patterns: bad or duplicate id(s) {', '.join(bad)}")
    stray = sorted(p.name for p in root.glob(f"*{PATTERN_SUFFIX}") if p.name != LIBRARY_FILE and p.stem not in ids)
    if stray:
        raise c.fail(f"file(s) not listed under patterns: {', '.join(stray)}")
    limitations = tuple(c.text(t, "limitations[]") for t in c.items(lib.get("limitations") or [], "limitations", True))

    canonical: dict[str, Any] = {LIBRARY_FILE: raw_library}
    patterns: list[Pattern] = []
    for pattern_id in ids:
        file = root / f"{pattern_id}{PATTERN_SUFFIX}"
        if not file.is_file():
            raise PatternLibraryError(file.name, "listed in library.yaml but the file is missing")
        canonical[file.name] = _load_yaml(file)
        patterns.append(_pattern(file, canonical[file.name], pattern_id))
    _check_unique_prompts(patterns)
    _check_unique_short_names(patterns)
    raw_translations = read_translations(root)
    translations = parse_translations(raw_translations, {p.id: p for p in patterns})
    if raw_translations is not None:
        canonical[str(TRANSLATIONS_FILE)] = raw_translations
    blob = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return PatternLibrary(
        version=version, patterns={p.id: p for p in patterns}, pattern_ids=tuple(ids),
        content_hash=hashlib.sha256(blob.encode("utf-8")).hexdigest(),
        changelog=tuple(changelog), limitations=limitations, path=root, translations=translations)
