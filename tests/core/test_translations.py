"""The library's translated exemplars (resources/patterns/translations/exemplars.yaml): validated by
the loader, part of the library's hash, and tied to their English originals."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import yaml

from app.core.audit.patterns import DEFAULT_LIBRARY_DIR, PatternLibraryError, load_library
from app.core.audit.translations import LANGUAGES, TRANSLATIONS_FILE, multilingual_view


@pytest.fixture
def library_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "patterns"
    shutil.copytree(DEFAULT_LIBRARY_DIR, folder)
    return folder


def test_every_translation_belongs_to_a_library_prompt_and_covers_six_languages() -> None:
    library = load_library()
    assert library.translations
    for item in library.translations:
        pattern = library.patterns[item.pattern]
        assert item.en in (pattern.benign_exemplars if item.benign else pattern.exemplars)
        assert [lang for lang, _ in item.texts] == list(LANGUAGES)


def test_a_translation_of_a_prompt_not_in_the_library_is_refused(library_copy: Path) -> None:
    path = library_copy / TRANSLATIONS_FILE
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["items"][0]["en"] = "A prompt that is in no pattern file."
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PatternLibraryError, match="not one of"):
        load_library(library_copy)


def test_translations_are_in_the_hash(library_copy: Path) -> None:
    before = load_library(library_copy).content_hash
    path = library_copy / TRANSLATIONS_FILE
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["items"][0]["es"] += " Gracias."
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert load_library(library_copy).content_hash != before


def test_the_multilingual_view_adds_translations_only_with_their_original() -> None:
    library = load_library()
    first = library.translations[0]
    view = multilingual_view(library)
    pattern, viewed = library.patterns[first.pattern], view.patterns[first.pattern]
    added = set((viewed.benign_exemplars if first.benign else viewed.exemplars)) - set(
        pattern.benign_exemplars if first.benign else pattern.exemplars)
    assert {text for _, text in first.texts} <= added
    # without the English original (an evaluation holding it out), its translations go too
    held = dataclasses.replace(pattern, exemplars=tuple(t for t in pattern.exemplars if t != first.en),
                               benign_exemplars=tuple(t for t in pattern.benign_exemplars if t != first.en))
    smaller = dataclasses.replace(library, patterns={**library.patterns, first.pattern: held})
    kept = multilingual_view(smaller).patterns[first.pattern]
    assert not {text for _, text in first.texts} & set((*kept.exemplars, *kept.benign_exemplars))
