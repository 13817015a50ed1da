"""Load and validate Stillroom's distillation-pattern library (Qt-free).

The library lives in ``resources/patterns/``: ``library.yaml`` (version, changelog, the pattern
ids, known limitations) and one ``<id>.yaml`` per pattern; ``resources/patterns/README.md``
describes the schema. Loading is strict: any problem raises :class:`PatternLibraryError` naming
the file and what is wrong, so a broken library never reaches an audit.
:attr:`PatternLibrary.content_hash` lets an audit record exactly which library it used.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from app.core.audit.language import ENGLISH
from app.core.audit.translations import TRANSLATIONS_FILE, Translation, parse_translations, read_translations

DEFAULT_LIBRARY_DIR = Path(__file__).resolve().parents[3] / "resources" / "patterns"
LIBRARY_FILE = "library.yaml"
PATTERN_SUFFIX = ".yaml"
MIN_EXEMPLARS = 25
MIN_BENIGN_EXEMPLARS = 25
REGEX_FLAGS = re.IGNORECASE
OPS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "truthy"})
NUMERIC_OPS = frozenset({"gt", "gte", "lt", "lte"})
WORKFLOW_SIGNALS = frozenset({
    "volume", "rate_per_hour", "template_reuse_share", "semantic_diversity", "reasoning_share",
    "grading_share", "logprob_share", "max_tokens_1_share", "tool_share", "refusal_share", "grid_cells",
    "grid_coverage", "template_family_share"})
PARAM_FIELDS = frozenset({
    "logprobs", "top_logprobs", "max_tokens", "temperature", "top_p", "top_k", "n", "tools",
    "tool_choice", "functions", "response_format", "logit_bias", "echo", "seed", "stop"})
# The workflow signals that count generations on which a pattern's prompt cues fire; a pattern names
# those its cues feed under `feeds_signals` (the rest are computed from parameters and responses).
CUE_FED_SIGNALS = frozenset({"reasoning_share", "grading_share"})
SHORT_NAME_MAX = 16  # a report column title, narrow enough for every pattern side by side
PATTERN_KEYS = ("id", "name", "short_name", "version", "summary", "definition", "why_flagged", "sources",
                "prompt_cues", "param_cues", "workflow_cues", "benign_lookalikes", "exemplars",
                "benign_exemplars")
OPTIONAL_PATTERN_KEYS = ("limitations", "parameter_driven", "feeds_signals")
LIBRARY_KEYS = ("version", "changelog", "patterns")
OPTIONAL_LIBRARY_KEYS = ("limitations",)
SEMVER_RE = re.compile(r"^\d+\.\d+\.\d+$")
DATE_RE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")  # only as precise as the record allows
ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}$")
_MISSING = object()
_ORDER = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


class PatternLibraryError(ValueError):
    """The pattern library is malformed; ``file`` names the offending file, ``problem`` the fault."""

    def __init__(self, file: str, problem: str) -> None:
        super().__init__(f"{file}: {problem}")
        self.file = file
        self.problem = problem


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equal(actual: Any, expected: Any) -> bool:
    """Equality that does not treat ``True`` as ``1``."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    return bool(actual == expected)


def _compare(op: str, actual: Any, expected: Any) -> bool:
    """Apply ``op`` to an observed value; a missing (or null) value never matches."""
    if actual is _MISSING or actual is None:
        return False
    if op == "truthy":
        return bool(actual)
    if op in ("eq", "ne"):
        return _equal(actual, expected) == (op == "eq")
    if op == "in":
        return any(_equal(actual, item) for item in expected)
    return _is_number(actual) and bool(_ORDER[op](actual, expected))


@dataclass(frozen=True)
class Source:
    """A public statement or paper naming the pattern; ``reported_by`` when seen only via reporting."""
    title: str
    publisher: str
    date: str
    reported_by: tuple[str, ...] = ()
    url: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class PromptCue:
    """A regular expression over prompt text, compiled with :data:`REGEX_FLAGS`."""
    id: str
    description: str
    regex: str
    weight: float
    compiled: re.Pattern[str] = field(repr=False, compare=False)
    # The languages the cue is written for (empty: any). A cue written only for other languages than
    # English is not searched in a prompt detected as English (the cost of its long alternations is
    # then saved); a prompt whose language is not placed is searched.
    languages: tuple[str, ...] = ()

    def matches(self, text: str, language: str | None = None) -> bool:
        """True when the regex is found anywhere in ``text`` (whose detected language, if known, is
        ``language``)."""
        if language == ENGLISH and self.languages and ENGLISH not in self.languages:
            return False
        return self.compiled.search(text) is not None


@dataclass(frozen=True)
class _ConditionCue:
    """What parameter and workflow cues share: a comparison ``op`` against ``value``."""
    id: str
    description: str
    op: str
    value: Any
    weight: float


@dataclass(frozen=True)
class ParamCue(_ConditionCue):
    """A condition on one request parameter; ``field`` may be dotted (``response_format.type``)."""
    field: str

    def matches(self, params: Mapping[str, Any]) -> bool:
        """True when ``params`` satisfy the condition; an absent field never matches."""
        current: Any = params
        for part in self.field.split("."):
            if not isinstance(current, Mapping) or part not in current:
                return False
            current = current[part]
        return _compare(self.op, current, self.value)


@dataclass(frozen=True)
class WorkflowCue(_ConditionCue):
    """A condition on one workflow statistic (signals are defined in the library's README).
    ``evidence``: the statistic is evidence for this pattern on its own (see levels.py)."""
    signal: str
    evidence: bool | None = None

    def matches(self, stats: Mapping[str, Any]) -> bool:
        """True when ``stats[signal]`` satisfies the condition; an absent signal never matches."""
        return _compare(self.op, stats.get(self.signal, _MISSING), self.value)


@dataclass(frozen=True)
class BenignLookalike:
    """A legitimate practice that shares the pattern's surface features, and how to tell them apart."""
    name: str
    description: str
    how_to_tell: str


@dataclass(frozen=True)
class Pattern:
    """One pattern, as loaded from ``<id>.yaml`` (``file``).

    ``short_name`` titles its column in reports. ``parameter_driven``: its evidence is in the
    request parameters, so text alone must not make a hit. ``feeds_signals``: the workflow
    signals (of :data:`CUE_FED_SIGNALS`) that count a generation when one of its prompt cues fires.
    """
    id: str
    name: str
    short_name: str
    version: int
    summary: str
    definition: str
    why_flagged: str
    sources: tuple[Source, ...]
    prompt_cues: tuple[PromptCue, ...]
    param_cues: tuple[ParamCue, ...]
    workflow_cues: tuple[WorkflowCue, ...]
    benign_lookalikes: tuple[BenignLookalike, ...]
    exemplars: tuple[str, ...]
    benign_exemplars: tuple[str, ...]
    limitations: str | None
    file: str
    parameter_driven: bool = False
    feeds_signals: tuple[str, ...] = ()


@dataclass(frozen=True)
class PatternLibrary:
    """The whole library: semver ``version``, patterns by id (in ``pattern_ids`` order), content hash."""
    version: str
    patterns: dict[str, Pattern] = field(repr=False)
    pattern_ids: tuple[str, ...]
    content_hash: str
    changelog: tuple[Mapping[str, Any], ...] = field(repr=False)
    limitations: tuple[str, ...] = field(repr=False)
    path: Path
    # Exemplars in other languages, for the multilingual model only (app.core.audit.translations).
    translations: tuple[Translation, ...] = field(default=(), repr=False)

    def feeding(self, signal: str) -> tuple[Pattern, ...]:
        """The patterns whose prompt cues feed workflow signal ``signal``, in library order."""
        return tuple(p for p in (self.patterns[i] for i in self.pattern_ids) if signal in p.feeds_signals)


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
    return PromptCue(regex=regex, compiled=compiled, languages=tuple(languages), **base)


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
