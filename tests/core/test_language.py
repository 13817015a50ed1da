"""The language detector that routes prompts between the embedding models (app.core.audit.language,
app.core.audit.routing). The sentences were written for these tests."""

from __future__ import annotations

import pytest

from app.core.audit.language import SAMPLE_CHARS, UNKNOWN, detect_language
from app.core.audit.routing import route, routed_to_multilingual

PLACED = [
    ("en", "Summarise this article in three bullet points for my manager."),
    ("en", "What is the capital of Australia, and why is it not Sydney?"),
    ("es", "¿Puedes resumir este artículo en tres puntos para mi jefa?"),
    ("es", "Escribe una carta de presentación para un puesto de enfermería."),
    ("de", "Kannst du diesen Artikel in drei Stichpunkten für meine Chefin zusammenfassen?"),
    ("de", "Schreibe eine kurze Nachricht an den Hausmeister wegen der Heizung."),
    ("fr", "Peux-tu résumer cet article en trois points pour ma responsable ?"),
    ("fr", "Qu'est-ce qu'une obligation d'État, et pourquoi son prix baisse-t-il ?"),
    ("zh", "请用三个要点为我的经理总结这篇文章。"),
    ("ja", "この記事を三つの要点にまとめてください。"),
    ("ko", "이 기사를 세 가지 요점으로 요약해 주세요."),
    ("ru", "Можешь кратко изложить эту статью в трёх пунктах для моего начальника?"),
    ("ar", "هل يمكنك تلخيص هذا المقال في ثلاث نقاط لمديري؟"),
]


@pytest.mark.parametrize(("language", "text"), PLACED)
def test_each_language_is_placed(language: str, text: str) -> None:
    assert detect_language(text) == language


def test_a_quoted_word_does_not_change_the_language() -> None:
    assert detect_language("How do you pronounce 你好 and what does it mean in English?") == "en"
    assert detect_language("Translate the word 'Schadenfreude' into plain English for me.") == "en"


def test_what_cannot_be_placed_is_unknown_and_stays_on_the_default_model() -> None:
    for text in ("", "12 + 17 = ?", "x+y = 4z, x*y = 4z^2", "def f(a):\n    return a * 2\n", "!!! ???"):
        assert detect_language(text) in (UNKNOWN, "en"), text
        assert not routed_to_multilingual(detect_language(text))


def test_detection_reads_a_bounded_sample() -> None:
    german = "Bitte fasse diesen Text zusammen und erkläre ihn mir. "
    text = german * (SAMPLE_CHARS // len(german) + 1) + "the and of to " * 200_000
    assert len(text) > 100 * SAMPLE_CHARS
    assert detect_language(text) == "de"  # only the first SAMPLE_CHARS characters count


def test_route_splits_a_mixed_batch() -> None:
    texts = ["Explain recursion with an example.", "Explica la recursión con un ejemplo.",
             "用一个例子解释递归。", "2 + 2"]
    routes = route(texts)
    assert routes.languages == ("en", "es", "zh", UNKNOWN)
    assert routes.multilingual == (1, 2)
    assert routes.default == (0, 3)
