"""What Stillroom's distillation-pattern library is made of (Qt-free): patterns, their cues, sources and
look-alikes, the library and its translated exemplars; `patterns.load_library` reads them.

The library lives in ``resources/patterns/``: ``library.yaml`` (version, changelog, the pattern
ids, known limitations) and one ``<id>.yaml`` per pattern; ``resources/patterns/README.md``
describes the schema. Loading is strict: any problem raises :class:`PatternLibraryError` naming
the file and what is wrong, so a broken library never reaches an audit.
:attr:`PatternLibrary.content_hash` lets an audit record exactly which library it used.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from app.core.audit.cue_prefilter import may_match
from app.core.audit.language import ENGLISH

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
    # Strings one of which any match contains (cue_prefilter.required_literals); None: always search.
    literals: frozenset[str] | None = field(default=None, repr=False, compare=False)

    def matches(self, text: str, language: str | None = None) -> bool:
        """True when the regex is found anywhere in ``text`` (whose detected language, if known, is
        ``language``)."""
        if language == ENGLISH and self.languages and ENGLISH not in self.languages:
            return False
        if not may_match(self.literals, text):
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
class Translation:
    """One library prompt (`en`, verbatim) of `pattern` and its translations by language."""

    pattern: str
    benign: bool
    en: str
    texts: tuple[tuple[str, str], ...]  # (language, text)


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
