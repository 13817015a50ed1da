"""Template induction that tolerates several wrappers: is a group of prompts a sweep over a grid?

A capability sweep writes prompts from a few wrappers around a grid of slot values (languages x
tasks, subjects x difficulty). Seen from the prompts, a slot is a set of values of which every
prompt carries exactly one: words whose sets of prompts are disjoint and together cover most of
them (a *categorical slot*). A sweep has at least two such slots whose combinations cover much of
their grid, and its prompts share wrapper text (word 4-grams repeated across the family).

Once the values' words are taken out of a sweep's prompts, only a few wrappers are left; free text
(a judge's candidate answers) leaves a different remainder in every prompt, so disjoint words
there are no grid. A single-task batch over the user's own material (translate / summarise / classify each of these
texts) has at most one categorical slot: its variable part is free text, not a grid. That is a
template, not a sweep, and `induce_grid` reports it as no grid.

Bounded: at most SAMPLE prompts (evenly spaced) and MAX_SEEDS greedy partitions per call.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

SAMPLE = 300
MAX_SEEDS = 40
MIN_SLOT_VALUES = 3  # a slot with two values is too easily a coincidence (a/an, is/are)
MIN_VALUE_PROMPTS = 2
MAX_VALUE_SHARE = 0.6  # a word in most prompts is wrapper text, not a slot value
MIN_SLOT_COVER = 0.3  # a slot must be filled in at least this share of the prompts
MIN_FAMILY = 12
WRAPPER_GRAM = 4
WRAPPER_MIN_SHARE = 0.1  # a wrapper 4-gram recurs in at least this share of the family
WRAPPER_COVER = 0.8  # share of the family's prompts that must carry a wrapper 4-gram
MIN_GRID_COVERAGE = 0.5
# In a sweep, a prompt is its wrapper plus its cell's values: once the values' words are taken out,
# few distinct remainders are left. Free text (a judge's candidate answers, one's own documents)
# leaves one per prompt, whatever words happen to be disjoint.
MAX_REMAINDER_SHARE = 0.5
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class GridEvidence:
    """What template induction found in a group of prompts (all zero when no grid)."""

    slots: int = 0  # categorical slots found in the family (0 or >= 2)
    family: int = 0  # sampled prompts that fill both of the grid's slots and carry a wrapper
    sampled: int = 0
    cells: int = 0  # grid cells (values of slot A x values of slot B)
    covered: int = 0  # distinct cells seen
    values: list[list[str]] = field(default_factory=list)  # a few values of each grid slot

    @property
    def family_share(self) -> float:
        """Share of the sampled prompts in the grid's family."""
        return self.family / self.sampled if self.sampled else 0.0

    @property
    def coverage(self) -> float:
        """Distinct cells seen / cells of the grid."""
        return self.covered / self.cells if self.cells else 0.0


def _sample(prompts: Sequence[str]) -> list[str]:
    if len(prompts) <= SAMPLE:
        return list(prompts)
    step = len(prompts) / SAMPLE
    return [prompts[int(i * step)] for i in range(SAMPLE)]


def _postings(tokens: list[list[str]]) -> dict[int, list[str]]:
    """Bitset of prompts -> the words with exactly that set (a phrase's words share one)."""
    bits: dict[str, int] = {}
    for index, words in enumerate(tokens):
        for word in set(words):
            bits[word] = bits.get(word, 0) | (1 << index)
    grouped: dict[int, list[str]] = {}
    for word, mask in bits.items():
        grouped.setdefault(mask, []).append(word)
    return grouped


def _partitions(candidates: list[int], total: int) -> list[list[int]]:
    """Greedy sets of disjoint candidate postings that cover at least MIN_SLOT_COVER of the prompts."""
    found: list[list[int]] = []
    seen: set[frozenset[int]] = set()
    for seed in candidates[:MAX_SEEDS]:
        members, covered = [seed], seed
        for other in candidates:
            if other & covered == 0:
                members.append(other)
                covered |= other
        key = frozenset(members)
        if len(members) >= MIN_SLOT_VALUES and covered.bit_count() >= MIN_SLOT_COVER * total and key not in seen:
            seen.add(key)
            found.append(members)
    return found


def _cell_of(index: int, slot: list[int]) -> int | None:
    for value, mask in enumerate(slot):
        if mask >> index & 1:
            return value
    return None


def _wrapper_carriers(tokens: list[list[str]], members: list[int]) -> int:
    """How many of `members` carry a 4-gram that recurs across them (wrapper text)."""
    grams = [{tuple(words[i:i + WRAPPER_GRAM]) for i in range(len(words) - WRAPPER_GRAM + 1)}
             for words in (tokens[m] for m in members)]
    counts = Counter(g for gram_set in grams for g in gram_set)
    floor = max(MIN_VALUE_PROMPTS + 1, WRAPPER_MIN_SHARE * len(members))
    kept = [frozenset(g for g in gram_set if counts[g] >= floor) for gram_set in grams]
    return sum(1 for k in kept if k)


def induce_grid(prompts: Sequence[str]) -> GridEvidence:
    """Find the largest two-slot grid over shared wrappers in `prompts` (a sample of them)."""
    sample = _sample(prompts)
    total = len(sample)
    if total < MIN_FAMILY:
        return GridEvidence(sampled=total)
    tokens = [_WORD.findall(p.lower()) for p in sample]
    postings = _postings(tokens)
    top = MAX_VALUE_SHARE * total
    candidates = sorted((mask for mask in postings if MIN_VALUE_PROMPTS <= mask.bit_count() <= top),
                        key=lambda m: (-m.bit_count(), m))
    slots = _partitions(candidates, total)
    best = GridEvidence(sampled=total)
    for a in range(len(slots)):
        for b in range(a + 1, len(slots)):
            cover_a, cover_b = _union(slots[a]), _union(slots[b])
            if set(slots[a]) & set(slots[b]):
                continue
            both = cover_a & cover_b
            members = [i for i in range(total) if both >> i & 1]
            if len(members) < MIN_FAMILY or len(members) < best.family:
                continue
            cells = {(_cell_of(i, slots[a]), _cell_of(i, slots[b])) for i in members}
            if (len(members), len(cells)) <= (best.family, best.covered):
                continue
            grid = len(slots[a]) * len(slots[b])
            carrying = _wrapper_carriers(tokens, members)
            if len(cells) / grid < MIN_GRID_COVERAGE or carrying < WRAPPER_COVER * len(members):
                continue
            if _remainders(tokens, members, (slots[a], slots[b]), postings) > MAX_REMAINDER_SHARE * len(members):
                continue
            best = GridEvidence(slots=2 + sum(1 for s in slots if s is not slots[a] and s is not slots[b]
                                                 and _union(s) & both == both),
                                family=len(members), sampled=total, cells=grid, covered=len(cells),
                                values=[[" ".join(sorted(postings[m]))[:40] for m in slot[:4]]
                                        for slot in (slots[a], slots[b])])
    return best


def _remainders(tokens: list[list[str]], members: list[int], slots: tuple[list[int], list[int]],
                postings: dict[int, list[str]]) -> int:
    """How many distinct word sets the members leave once their own slot values' words are removed."""
    left = set()
    for i in members:
        words = set(tokens[i])
        for slot in slots:
            value = _cell_of(i, slot)
            if value is not None:
                words -= set(postings[slot[value]])
        left.add(frozenset(words))
    return len(left)


def _union(masks: list[int]) -> int:
    result = 0
    for mask in masks:
        result |= mask
    return result
