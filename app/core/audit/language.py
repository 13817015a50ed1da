"""Which language a prompt is written in, for routing it to an embedding model (app.core.audit.routing).

Small, offline and deterministic: no model, no network. Non-Latin scripts decide first (Han with no
kana: zh; kana: ja; Hangul: ko; Cyrillic: ru; Arabic: ar; Greek, Hebrew, Devanagari, Thai); Latin
text is placed by stop words and diacritics among en, es, de, fr. What it cannot place is UNKNOWN,
and routing treats UNKNOWN like English: the default model keeps every prompt it scored before.

tests/bench/eval_multilingual.py measures its accuracy on the translated evaluation set.
"""

from __future__ import annotations

import re
import unicodedata

UNKNOWN = "und"
ENGLISH = "en"
# How much of a text's letters a non-Latin script needs before it names the language: a Chinese word
# quoted in an English sentence does not make it Chinese. A Han or kana character counts as a word's
# worth of letters (WIDE_WEIGHT), since one carries what several Latin letters do.
SCRIPT_SHARE = 0.3
WIDE_WEIGHT = 3
# Latin text: at least this many stop-word (or diacritic) points, and more than English has.
MIN_EVIDENCE = 2
SAMPLE_CHARS = 4000  # the detector reads at most this much of a text (bounded time on huge prompts)

_SCRIPTS = (  # (first, last code point, language), scanned in order
    (0x3040, 0x30FF, "ja"),  # hiragana, katakana
    (0xAC00, 0xD7AF, "ko"), (0x1100, 0x11FF, "ko"),
    (0x4E00, 0x9FFF, "zh"), (0x3400, 0x4DBF, "zh"), (0xF900, 0xFAFF, "zh"),
    (0x0400, 0x04FF, "ru"), (0x0500, 0x052F, "ru"),
    (0x0600, 0x06FF, "ar"), (0x0750, 0x077F, "ar"), (0xFB50, 0xFDFF, "ar"), (0xFE70, 0xFEFF, "ar"),
    (0x0370, 0x03FF, "el"), (0x0590, 0x05FF, "he"), (0x0900, 0x097F, "hi"), (0x0E00, 0x0E7F, "th"),
)
_WIDE = {"zh", "ja"}

_STOP_WORDS = {
    "en": "the and of to is are was be this that with for you your what how why which it on in "
          "not do does can please me my from as at by an or if then there their give show write",
    "es": "el los las del que en un una por para con es son está qué cómo cuál tus su sus se lo al "
          "más menos pero muy también sin sobre dame escribe explica muestra responde como hay",
    "de": "der die das und ist sind nicht ein eine einen dem den des mit für auf zu von im wie was "
          "warum ich du dein deine sie es bitte gib zeig schreibe erkläre antworte oder auch diesen "
          "dieser diese dieses jeden jede soll um als wenn wird werden hat haben nach bei aus",
    "fr": "le les des du et est sont une pour avec dans qui quoi pourquoi comment ce cette ton ta "
          "tes ne pas vous au aux sur donne montre écris explique réponds il elle ils mais son sa "
          "ses leur comme moins plus celles celle ou où je tu moi toi chez suis nous que",
}
_STOP = {lang: frozenset(words.split()) for lang, words in _STOP_WORDS.items()}
_DIACRITICS = {"es": "ñ¿¡áíóú", "de": "äöüß", "fr": "çèêëàâîïôûùœ"}
_DECISIVE = "ñ¿¡ßœ"  # marks no other of the four languages uses: each counts twice
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_FRENCH_ELISION = re.compile(r"\b(?:l|d|qu|j|c)['’][^\W\d_]", re.IGNORECASE)  # l'heure, qu'il


_SCRIPT_PATTERNS = {}
for _first, _last, _language in _SCRIPTS:
    _SCRIPT_PATTERNS.setdefault(_language, []).append(f"\\u{_first:04x}-\\u{_last:04x}")
_SCRIPT_RES = {language: re.compile(f"[{''.join(ranges)}]") for language, ranges in _SCRIPT_PATTERNS.items()}
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")


def _script_language(text: str) -> str | None:
    """The language a non-Latin script names, when it carries enough of the text's letters."""
    weights = {language: len(found) * (WIDE_WEIGHT if language in _WIDE else 1)
               for language, pattern in _SCRIPT_RES.items() if (found := pattern.findall(text))}
    if not weights:
        return None
    latin = len(_LATIN_LETTER.findall(text))
    if "ja" in weights:  # Japanese mixes kana with Han: any kana share makes Han Japanese
        weights["ja"] += weights.pop("zh", 0)
    language, weight = max(weights.items(), key=lambda item: (item[1], item[0]))
    return language if weight >= SCRIPT_SHARE * (latin + sum(weights.values())) else None


_LANGUAGES_OF: dict[str, tuple[str, ...]] = {}
for _lang, _words in _STOP.items():
    for _word in _words:
        _LANGUAGES_OF[_word] = (*_LANGUAGES_OF.get(_word, ()), _lang)


def _latin_language(text: str) -> str:
    """en, es, de or fr by stop words and diacritics; UNKNOWN without enough evidence."""
    lowered = text.lower()
    points = dict.fromkeys(_STOP, 0)
    for word in _WORD.findall(lowered):
        for lang in _LANGUAGES_OF.get(word, ()):
            points[lang] += 1
    if not lowered.isascii():
        for lang, marks in _DIACRITICS.items():
            points[lang] += sum(2 if mark in _DECISIVE else 1 for mark in marks if mark in lowered)
    if "'" in text or "’" in text:
        points["fr"] += len(_FRENCH_ELISION.findall(text))
    ranked = sorted(points.items(), key=lambda item: (-item[1], item[0]))
    best, score = ranked[0]
    if score < MIN_EVIDENCE:
        return ENGLISH if points["en"] >= 1 and all(points[lang] == 0 for lang in _DIACRITICS) else UNKNOWN
    if best != ENGLISH and score <= points[ENGLISH]:
        return ENGLISH
    if ranked[1][1] == score:  # a tie between two languages places nothing
        return UNKNOWN
    return best


def detect_language(text: str) -> str:
    """An ISO 639-1 code (en es de fr zh ja ko ru ar el he hi th) or UNKNOWN."""
    sample = text[:SAMPLE_CHARS]
    if sample.isascii():  # the common case: no script or diacritic to look for
        return _latin_language(sample)
    sample = unicodedata.normalize("NFC", sample)
    return _script_language(sample) or _latin_language(sample)
