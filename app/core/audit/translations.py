"""The library's exemplars in other languages (resources/patterns/translations/exemplars.yaml).

Each item names a pattern, whether the text is one of its exemplars or one of its benign
look-alikes, the English text exactly as it is in the pattern's file, and its translations. The
multilingual model (app.core.audit.encoders) is fitted on the library with these added
(multilingual_view), so a Spanish prompt has Spanish neighbours among the exemplars; the default
English model never sees them. A translation belongs to its English original: a library without
that original (an evaluation that holds it out) drops its translations too.

The file is part of the library: load_library validates it and its content is in the library's
content hash, so changing a translation re-scores like changing an exemplar.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from app.core.audit.pattern_types import Pattern, PatternLibrary, PatternLibraryError, Translation

TRANSLATIONS_FILE = Path("translations") / "exemplars.yaml"
LANGUAGES = ("es", "de", "fr", "zh", "ru", "ar")
KINDS = ("exemplar", "benign")


def read_translations(root: Path) -> Any:
    """The parsed translations file under a library folder, or None when there is none."""
    path = root / TRANSLATIONS_FILE
    if not path.is_file():
        return None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
            raise PatternLibraryError(str(TRANSLATIONS_FILE), f"cannot read YAML: {exc}") from exc


def parse_translations(raw: Any, patterns: dict[str, Pattern]) -> tuple[Translation, ...]:
    """Validate the parsed file against the loaded patterns; a PatternLibraryError names the problem."""
    def fail(problem: str) -> PatternLibraryError:
        return PatternLibraryError(str(TRANSLATIONS_FILE), problem)

    if raw is None:
        return ()
    if not isinstance(raw, dict) or not isinstance(raw.get("items"), list):
        raise fail("expected a mapping with a list under `items`")
    found: list[Translation] = []
    for index, item in enumerate(raw["items"]):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            raise fail(f"{where}: expected a mapping")
        unknown = sorted(set(item) - {"pattern", "kind", "en", *LANGUAGES})
        if unknown:
            raise fail(f"{where}: unknown key(s) {', '.join(unknown)}")
        pattern = patterns.get(item.get("pattern"))  # type: ignore[arg-type]
        if pattern is None:
            raise fail(f"{where}: unknown pattern {item.get('pattern')!r}")
        if item.get("kind") not in KINDS:
            raise fail(f"{where}: kind must be one of {', '.join(KINDS)}")
        benign = item["kind"] == "benign"
        if item.get("en") not in (pattern.benign_exemplars if benign else pattern.exemplars):
            raise fail(f"{where}: `en` is not one of {pattern.id}'s {'benign_exemplars' if benign else 'exemplars'}")
        texts = tuple((lang, item[lang].strip()) for lang in LANGUAGES
                      if isinstance(item.get(lang), str) and item[lang].strip())
        if not texts:
            raise fail(f"{where}: no translation")
        found.append(Translation(pattern.id, benign, item["en"], texts))
    return tuple(found)


def multilingual_view(library: PatternLibrary) -> PatternLibrary:
    """The library with every translation added after its pattern's own exemplars (or look-alikes),
    for the translations whose English original is still in the library."""
    extra: dict[tuple[str, bool], list[str]] = {}
    for item in library.translations:
        pattern = library.patterns.get(item.pattern)
        if pattern is None or item.en not in (pattern.benign_exemplars if item.benign else pattern.exemplars):
            continue
        extra.setdefault((item.pattern, item.benign), []).extend(text for _, text in item.texts)
    if not extra:
        return library
    patterns = {pid: dataclasses.replace(
        p, exemplars=(*p.exemplars, *extra.get((pid, False), ())),
        benign_exemplars=(*p.benign_exemplars, *extra.get((pid, True), ())))
        for pid, p in library.patterns.items()}
    return dataclasses.replace(library, patterns=patterns)
