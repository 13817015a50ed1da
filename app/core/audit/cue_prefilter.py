"""Literal prefilters for prompt cues: strings of which a cue's regex cannot match without one.

Most cues are alternations of phrases ("your (internal|hidden) reasoning", "let's think step by
step"), and most prompts contain none of their words, yet `re.search` walks every prompt character
by character for each of some ninety cues. From the parsed regex we take a set of lowercase strings
one of which every match must contain; a prompt that contains none of them cannot match, and the
regex is not run. The set is the best one found (its shortest member as long as possible) among the
regex's literal runs, groups, alternations whose every branch has one, and repeats of at least one.

Only sound where lowercasing is exact: the prefilter is used for ASCII text, where `str.lower()` and
the regex's case-insensitive matching agree; other text always runs the regex.
"""

from __future__ import annotations

try:  # Python 3.11+
    import re._constants as _c
    import re._parser as _p
except ImportError:  # pragma: no cover - older Pythons
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _p  # type: ignore[no-redef]

# Shorter literals are found in nearly every prompt and would only add work.
MIN_LITERAL = 3

Literals = frozenset[str]


def _shortest(found: Literals | None) -> int:
    return min(len(s) for s in found) if found else 0


def _better(candidate: Literals | None, best: Literals | None) -> Literals | None:
    return candidate if candidate and _shortest(candidate) > _shortest(best) else best


def _required(parsed: _p.SubPattern | list) -> Literals | None:
    """A set of strings one of which every match of `parsed` contains, or None when none is known."""
    best: Literals | None = None
    run: list[str] = []
    for op, av in parsed:
        if op is _c.LITERAL:
            run.append(chr(av).lower())
            continue
        if run:
            best = _better(frozenset({"".join(run)}), best)
            run = []
        if op is _c.SUBPATTERN:
            best = _better(_required(av[-1]), best)
        elif op is _c.BRANCH:
            branches = [_required(branch) for branch in av[1]]
            if all(branches):
                best = _better(frozenset().union(*branches), best)
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and av[0] >= 1:
            best = _better(_required(av[2]), best)
    if run:
        best = _better(frozenset({"".join(run)}), best)
    return best


def required_literals(regex: str, flags: int) -> Literals | None:
    """The lowercase strings one of which any match of `regex` must contain, or None when no useful
    set is known (then the regex is always run)."""
    try:
        found = _required(_p.parse(regex, flags))
    except Exception:  # a construct the parser of this Python version reads differently
        return None
    if not found or _shortest(found) < MIN_LITERAL:
        return None
    return found


def may_match(literals: Literals | None, text: str) -> bool:
    """False only when `text` is ASCII and contains none of `literals` (so the regex cannot match).
    Lowering the prompt once per cue, not once per prompt, measured the same (the searches dominate)."""
    if literals is None or not text.isascii():
        return True
    lowered = text.lower()
    return any(s in lowered for s in literals)
