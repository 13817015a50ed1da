"""Tests for the distillation-pattern library (resources/patterns) and its loader (no Qt)."""

from __future__ import annotations

import csv
import json
import re
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from app.core.audit.patterns import (
    CUE_FED_SIGNALS, DEFAULT_LIBRARY_DIR, MIN_BENIGN_EXEMPLARS, MIN_EXEMPLARS, WORKFLOW_SIGNALS, ParamCue,
    PatternLibrary, PatternLibraryError, WorkflowCue, load_library)
from app.core.audit.signals import CUE_FLAGS, FLAG_GRADING, generation_flags

EXPECTED_IDS = {
    "cot_exfiltration", "cot_critique", "autograding", "templated_sweep", "agentic_harvest",
    "refusal_probe", "logprob_harvest", "identity_probe", "persona_cloning",
}
# Patterns whose evidence is mainly in the prompt text: their own cues must fire on a clear
# majority of their exemplars. For logprob_harvest (request parameters) and persona_cloning
# (workflow-level spread) the text is a weak signal, so their rates are printed, not required.
TEXT_SIGNAL_PATTERNS = EXPECTED_IDS - {"logprob_harvest", "persona_cloning"}
MIN_EXEMPLAR_HIT_RATE = 0.7
MAX_BENIGN_HIT_RATE = 0.2
EVAL_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "eval" / "public"
SHINGLE = 5
MAX_JACCARD = 0.5
MAX_CONTAINMENT = 0.6  # share of a library prompt's shingles found in one eval string
MIN_SHINGLES_FOR_CONTAINMENT = 4
# Long, repetitive inputs that expose super-linear backtracking (e.g. "(^|\n)\s*" before more
# whitespace). Pasted documents make long prompts normal, so every cue must stay fast on them.
REDOS_UNITS = (" ", "\n", " \n", "a ", "[[", ": ", "topic: x\n", "response A ", "your ", "Thought: ",
               "every ", "A) x\n")
REDOS_LENGTH = 10_000
REDOS_MAX_SECONDS = 0.25


@pytest.fixture(scope="module")
def library() -> PatternLibrary:
    return load_library()


def _copy_library(tmp_path: Path) -> Path:
    target = tmp_path / "patterns"
    shutil.copytree(DEFAULT_LIBRARY_DIR, target)
    return target


def _edit(path: Path, change: Any) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _hit_rate(prompts: tuple[str, ...], pattern: Any) -> float:
    return sum(any(c.matches(p) for c in pattern.prompt_cues) for p in prompts) / len(prompts)


# --- the library as shipped -------------------------------------------------------------------

def test_library_loads_with_the_nine_ids(library: PatternLibrary) -> None:
    assert set(library.pattern_ids) == EXPECTED_IDS
    assert len(library.pattern_ids) == 9
    assert set(library.patterns) == EXPECTED_IDS
    for pattern_id, pattern in library.patterns.items():
        assert pattern.id == pattern_id and pattern.file == f"{pattern_id}.yaml"


def test_version_and_changelog_recorded(library: PatternLibrary) -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", library.version)
    assert library.changelog[0]["version"] == library.version
    assert library.limitations, "library.yaml should state what the library cannot see"


def test_content_hash_is_stable(library: PatternLibrary) -> None:
    again = load_library()
    assert re.fullmatch(r"[0-9a-f]{64}", library.content_hash)
    assert again.content_hash == library.content_hash


def test_content_hash_follows_content(tmp_path: Path, library: PatternLibrary) -> None:
    root = _copy_library(tmp_path)
    assert load_library(root).content_hash == library.content_hash
    readme = root / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + "\nextra\n", encoding="utf-8")
    assert load_library(root).content_hash == library.content_hash, "README is not library content"
    _edit(root / "autograding.yaml", lambda d: None)  # reformatted, same content
    assert load_library(root).content_hash == library.content_hash
    _edit(root / "autograding.yaml", lambda d: d["exemplars"].append("Grade this limerick from 1 to 3."))
    assert load_library(root).content_hash != library.content_hash


def test_every_pattern_is_complete(library: PatternLibrary) -> None:
    for pattern in library.patterns.values():
        assert len(pattern.exemplars) >= max(MIN_EXEMPLARS, 30), pattern.id
        assert len(pattern.benign_exemplars) >= max(MIN_BENIGN_EXEMPLARS, 30), pattern.id
        assert pattern.sources and all(s.title and s.publisher and s.date for s in pattern.sources)
        assert len(pattern.benign_lookalikes) >= 2, pattern.id
        assert pattern.prompt_cues or pattern.param_cues, pattern.id
        assert pattern.workflow_cues, pattern.id
        for cue in pattern.workflow_cues:
            assert cue.signal in WORKFLOW_SIGNALS
        for cue in pattern.prompt_cues:
            assert re.compile(cue.regex, re.I).pattern == cue.regex


def test_exemplars_vary_in_length(library: PatternLibrary) -> None:
    for pattern in library.patterns.values():
        lengths = sorted(len(p.split()) for p in pattern.exemplars)
        assert lengths[0] <= 15 and lengths[-1] >= 35, (pattern.id, lengths[0], lengths[-1])


def test_prompt_cue_hit_rates(library: PatternLibrary, capsys: pytest.CaptureFixture[str]) -> None:
    rows = []
    for pattern in library.patterns.values():
        own = _hit_rate(pattern.exemplars, pattern)
        benign = _hit_rate(pattern.benign_exemplars, pattern)
        rows.append((pattern.id, own, benign))
        assert benign <= MAX_BENIGN_HIT_RATE, f"{pattern.id}: cues fire on {benign:.0%} of benign exemplars"
        if pattern.id in TEXT_SIGNAL_PATTERNS:
            assert own >= MIN_EXEMPLAR_HIT_RATE, f"{pattern.id}: cues fire on only {own:.0%} of exemplars"
    with capsys.disabled():
        print("\nprompt-cue hit rates (exemplars / benign exemplars):")
        for pattern_id, own, benign in rows:
            print(f"  {pattern_id:18s} {own:6.1%} / {benign:6.1%}")


def test_cues_are_specific_to_their_pattern(library: PatternLibrary) -> None:
    """Each pattern's cues fire rarely on the pooled benign exemplars of the whole library."""
    pooled = tuple(p for pattern in library.patterns.values() for p in pattern.benign_exemplars)
    for pattern in library.patterns.values():
        assert _hit_rate(pooled, pattern) <= 0.05, pattern.id


def test_prompt_cues_stay_fast_on_long_repetitive_text(library: PatternLibrary) -> None:
    slow = []
    for pattern in library.patterns.values():
        for cue in pattern.prompt_cues:
            for unit in REDOS_UNITS:
                text = (unit * (REDOS_LENGTH // len(unit) + 1))[:REDOS_LENGTH]
                start = time.perf_counter()
                cue.matches(text)
                elapsed = time.perf_counter() - start
                if elapsed > REDOS_MAX_SECONDS:
                    slow.append(f"{pattern.id}/{cue.id} on {unit!r}: {elapsed:.2f}s")
    assert not slow, "regexes with super-linear backtracking: " + "; ".join(slow)


def test_what_the_audit_needs_to_know_of_a_pattern_is_in_its_file(library: PatternLibrary) -> None:
    """Column titles, parameter-driven patterns and the patterns feeding each cue-fed signal."""
    assert len({p.short_name for p in library.patterns.values()}) == len(library.pattern_ids)
    assert {p.id for p in library.patterns.values() if p.parameter_driven} == {"logprob_harvest"}
    assert [p.id for p in library.feeding("reasoning_share")] == ["cot_exfiltration", "cot_critique"]
    assert [p.id for p in library.feeding("grading_share")] == ["autograding"]
    assert set(CUE_FLAGS) == CUE_FED_SIGNALS, "every signal a pattern may feed has its flag"


def test_a_new_pattern_file_feeds_the_signal_it_names(tmp_path: Path, library: PatternLibrary) -> None:
    from tests.core.pattern_files import NEW_ID, WORKFLOW_PROMPTS, library_with_new_pattern

    extended = load_library(library_with_new_pattern(tmp_path, feeds_signals=["grading_share"]))
    assert extended.pattern_ids == (*library.pattern_ids, NEW_ID)
    assert [p.id for p in extended.feeding("grading_share")] == ["autograding", NEW_ID]
    prompt = WORKFLOW_PROMPTS[0]
    assert generation_flags(extended, {}, prompt, {}) & FLAG_GRADING
    assert not generation_flags(library, {}, prompt, {}) & FLAG_GRADING


# --- cue semantics ----------------------------------------------------------------------------

def test_param_cues_for_logprob_harvest(library: PatternLibrary) -> None:
    cues = {c.id: c for c in library.patterns["logprob_harvest"].param_cues}
    harvest = {"logprobs": True, "top_logprobs": 20, "max_tokens": 1}
    assert cues["logprobs_requested"].matches(harvest)
    assert cues["many_alternatives"].matches(harvest)
    assert cues["one_token_output"].matches(harvest)
    chat = {"temperature": 0.7, "max_tokens": 512}
    assert not any(c.matches(chat) for c in cues.values())
    assert not cues["one_token_output"].matches({"max_tokens": True}), "True is not 1"


def test_param_and_workflow_ops() -> None:
    def param(op: str, value: Any = None, field: str = "n") -> ParamCue:
        return ParamCue(id="x", description="x", op=op, value=value, weight=0.5, field=field)

    assert param("gte", 5).matches({"n": 5}) and not param("gt", 5).matches({"n": 5})
    assert param("lt", 5).matches({"n": 4}) and param("lte", 5).matches({"n": 5})
    assert param("ne", 1).matches({"n": 2}) and not param("ne", 1).matches({})
    assert param("in", ["required", "any"], "tool_choice").matches({"tool_choice": "required"})
    assert param("truthy", field="tools").matches({"tools": [{"type": "function"}]})
    assert not param("truthy", field="tools").matches({"tools": []})
    assert not param("gt", 1).matches({"n": "7"}), "strings are not numbers"
    assert param("eq", "json_object", "response_format.type").matches({"response_format": {"type": "json_object"}})
    workflow = WorkflowCue(id="w", description="w", op="gte", value=0.5, weight=0.5, signal="grading_share")
    assert workflow.matches({"grading_share": 0.9}) and not workflow.matches({"volume": 10})


# --- held-out evaluation sets -----------------------------------------------------------------

def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value)


def _eval_strings(root: Path) -> list[str]:
    """Every string in the public evaluation files (jsonl, json, csv cells, txt templates)."""
    found: list[str] = []
    for path in sorted(root.rglob("*")):
        if path.suffix == ".jsonl":
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    found.extend(_strings(json.loads(line)))
        elif path.suffix == ".json":
            text = path.read_text(encoding="utf-8")
            try:
                found.extend(_strings(json.loads(text)))
            except json.JSONDecodeError:  # some public sets are JSON lines under a .json name
                found.extend(s for line in text.splitlines() if line.strip() for s in _strings(json.loads(line)))
        elif path.suffix == ".csv":
            with path.open(encoding="utf-8", newline="") as handle:
                found.extend(cell for row in csv.DictReader(handle) for cell in row.values() if cell)
        elif path.suffix == ".txt":
            text = path.read_text(encoding="utf-8")
            found.append(text)
            found.extend(re.split(r"\n\s*\n", text))
    return found


def _shingles(text: str) -> set[tuple[str, ...]]:
    tokens = re.findall(r"\w+", text.casefold())
    if len(tokens) < SHINGLE:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i:i + SHINGLE]) for i in range(len(tokens) - SHINGLE + 1)}


def test_no_overlap_with_public_eval_sets(library: PatternLibrary) -> None:
    if not EVAL_DIR.is_dir():
        pytest.skip(f"public evaluation sets not found at {EVAL_DIR} (only present in the dev checkout)")
    eval_sets = [_shingles(s) for s in _eval_strings(EVAL_DIR)]
    assert len(eval_sets) > 1000, "expected the public evaluation prompts to load"
    index: dict[tuple[str, ...], set[int]] = defaultdict(set)
    for i, shingles in enumerate(eval_sets):
        for shingle in shingles:
            index[shingle].add(i)
    worst = (0.0, "")
    for pattern in library.patterns.values():
        for prompt in (*pattern.exemplars, *pattern.benign_exemplars):
            mine = _shingles(prompt)
            shared: dict[int, int] = defaultdict(int)
            for shingle in mine:
                for i in index.get(shingle, ()):
                    shared[i] += 1
            for i, count in shared.items():
                jaccard = count / len(mine | eval_sets[i])
                worst = max(worst, (jaccard, prompt[:60]))
                assert jaccard <= MAX_JACCARD, f"{pattern.id}: {prompt[:80]!r} overlaps a public eval prompt"
                if len(mine) >= MIN_SHINGLES_FOR_CONTAINMENT:
                    assert count / len(mine) <= MAX_CONTAINMENT, f"{pattern.id}: {prompt[:80]!r} is contained in an eval prompt"
    print(f"highest Jaccard with a public eval prompt: {worst[0]:.2f} ({worst[1]!r})")


# --- validation errors ------------------------------------------------------------------------

@pytest.mark.parametrize(("file", "change", "message"), [
    ("refusal_probe.yaml", lambda d: d.pop("why_flagged"), "missing key"),
    ("autograding.yaml", lambda d: d["prompt_cues"][0].update(regex="([unclosed"), "bad regex"),
    ("identity_probe.yaml", lambda d: d["prompt_cues"][0].update(regex="x*"), "empty string"),
    ("cot_critique.yaml", lambda d: d.update(exemplars=d["exemplars"][:10]), "at least 25"),
    ("logprob_harvest.yaml", lambda d: d["param_cues"][0].update(op="approx"), "unknown op"),
    ("logprob_harvest.yaml", lambda d: d["param_cues"][1].update(value="five"), "numeric value"),
    ("persona_cloning.yaml", lambda d: d["workflow_cues"][0].update(signal="vibes"), "unknown signal"),
    ("agentic_harvest.yaml", lambda d: d["param_cues"][0].update(field="temprature"), "unknown request field"),
    ("templated_sweep.yaml", lambda d: d["prompt_cues"][0].update(weight=1.5), "weight"),
    ("cot_exfiltration.yaml", lambda d: d["sources"][0].update(date="Feb 2026"), "date"),
    ("cot_exfiltration.yaml", lambda d: d.update(extra="x"), "unknown key"),
    ("autograding.yaml", lambda d: d.update(id="autograder"), "file name"),
    ("autograding.yaml", lambda d: d["exemplars"].append(d["exemplars"][0].upper()), "duplicates"),
    ("autograding.yaml", lambda d: d["benign_exemplars"].append(d["exemplars"][3]), "duplicates"),
    ("persona_cloning.yaml", lambda d: d.pop("short_name"), "missing key(s) short_name"),
    ("persona_cloning.yaml", lambda d: d.update(short_name="Persona and style cloning"), "at most 16 characters"),
    ("persona_cloning.yaml", lambda d: d.update(short_name="sweep"), "already used by templated_sweep.yaml"),
    ("logprob_harvest.yaml", lambda d: d.update(parameter_driven="yes"), "parameter_driven must be true or false"),
    ("cot_critique.yaml", lambda d: d.update(parameter_driven=True), "parameter_driven needs param_cues"),
    ("autograding.yaml", lambda d: d.update(feeds_signals=["grading"]), "feeds_signals: unknown signal"),
    ("autograding.yaml", lambda d: d.update(feeds_signals="grading_share"), "feeds_signals must be a list"),
    ("autograding.yaml", lambda d: d.update(feeds_signals=["grading_share"] * 2), "named twice"),
    ("persona_cloning.yaml", lambda d: d.update(prompt_cues=[], feeds_signals=["reasoning_share"]),
     "feeds_signals needs prompt_cues"),
    ("library.yaml", lambda d: d.update(version=1.0), "semver"),
    ("library.yaml", lambda d: d["patterns"].remove("persona_cloning"), "not listed"),
])
def test_malformed_library_names_the_file(tmp_path: Path, file: str, change: Any, message: str) -> None:
    root = _copy_library(tmp_path)
    _edit(root / file, change)
    with pytest.raises(PatternLibraryError) as caught:
        load_library(root)
    assert caught.value.file == file
    assert str(caught.value).startswith(f"{file}: ") and message in str(caught.value)


def test_duplicate_between_files_is_rejected(tmp_path: Path, library: PatternLibrary) -> None:
    root = _copy_library(tmp_path)
    stolen = library.patterns["cot_critique"].exemplars[0]
    _edit(root / "persona_cloning.yaml", lambda d: d["exemplars"].append(stolen))
    with pytest.raises(PatternLibraryError, match="duplicates cot_critique.yaml exemplars") as caught:
        load_library(root)
    assert caught.value.file == "persona_cloning.yaml"


def test_missing_pattern_file_and_library_file(tmp_path: Path) -> None:
    root = _copy_library(tmp_path)
    (root / "identity_probe.yaml").unlink()
    with pytest.raises(PatternLibraryError, match="identity_probe.yaml: listed in library.yaml"):
        load_library(root)
    with pytest.raises(PatternLibraryError, match="library.yaml: not found"):
        load_library(tmp_path / "nowhere")


def test_unparseable_yaml_names_the_file(tmp_path: Path) -> None:
    root = _copy_library(tmp_path)
    (root / "templated_sweep.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    with pytest.raises(PatternLibraryError, match=r"^templated_sweep\.yaml: cannot read YAML"):
        load_library(root)
