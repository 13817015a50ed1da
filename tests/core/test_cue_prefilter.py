"""The literal prefilter of prompt cues never changes what a cue matches (app/core/audit/cue_prefilter.py)."""

from __future__ import annotations

import re

import pytest

from app.core.audit.cue_prefilter import may_match, required_literals
from app.core.audit.patterns import load_library
from app.core.audit.pattern_types import REGEX_FLAGS


@pytest.mark.parametrize(("regex", "expected"), [
    (r"\bfoo\s+barbaz\b", {"barbaz"}),
    (r"(?:hello)?there", {"there"}),            # an optional group is not required
    (r"x*(alpha|beta|gamma)", {"alpha", "beta", "gamma"}),
    (r"(alpha|b)c", None),                       # one branch has no literal of 3 characters
    (r"(ab){2}", None),                          # too short to be worth a search
    (r"(?:word){1,3}\s+\d+", {"word"}),          # a repeat of at least one keeps its literal
    (r"[a-z]+ing", {"ing"}),
    (r"Hello WORLD", {"hello world"}),           # lowercase, as matched without case
])
def test_required_literals(regex: str, expected: set[str] | None) -> None:
    found = required_literals(regex, REGEX_FLAGS)
    assert (set(found) if found is not None else None) == expected


def test_text_that_is_not_ascii_always_runs_the_regex() -> None:
    literals = frozenset({"think"})
    assert not may_match(literals, "nothing here")
    assert may_match(literals, "THINK again")
    assert may_match(literals, "ſo nothing of it here")   # non-ASCII: the regex decides
    assert may_match(None, "anything")


def test_every_cue_matches_the_same_with_and_without_its_prefilter() -> None:
    library = load_library()
    texts: list[str] = []
    for pattern in library.patterns.values():
        texts += [*pattern.exemplars, *pattern.benign_exemplars]
        texts += [t.upper() for t in pattern.exemplars] + [t.title() for t in pattern.benign_exemplars]
    texts += [text for item in library.translations for _, text in item.texts]
    cues = [cue for pattern in library.patterns.values() for cue in pattern.prompt_cues]
    assert sum(cue.literals is not None for cue in cues) >= len(cues) // 2, "most cues should have a prefilter"
    fired = 0
    for text in texts:
        for cue in cues:
            expected = cue.compiled.search(text) is not None
            assert cue.matches(text) == expected, (cue.id, text[:80])
            fired += expected
    assert fired > len(texts) // 2   # the comparison covered matches, not only misses
    # A case-insensitive match of a literal written in another case still passes the prefilter.
    cue = next(c for c in cues if c.id == "worked_reasoning_demos")
    demo = "Q: 2+2?\nA: LET'S THINK STEP BY STEP. 2+2=4. THE ANSWER IS 4.\nQ: 3+3?\nA: Let's Think Step By Step."
    assert re.search(cue.regex, demo, REGEX_FLAGS) and cue.matches(demo)
