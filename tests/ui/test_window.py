"""The main window: title, navigation, themes, and settings that persist between runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from app.core.models.sampling import SamplingParams
from app.ui.settings import AppSettings
from app.ui.theme import DARK, LIGHT


def test_title_navigation_and_shortcuts(qtbot: Any, window: Any) -> None:
    assert "Stillroom" in window.windowTitle()
    assert [window.nav.item(r).text() for r in range(window.nav.count())] == ["Chat", "Models", "Ledger", "Batch", "Server",
                                                                         "Audit", "Provenance", "Lab", "Usage", "Screen"]
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.current_view() == "models" and window.stack.currentWidget() is window.models
    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert window.stack.currentWidget() is window.ledger
    window.nav.setCurrentRow(0)  # widget -> view
    assert window.stack.currentWidget() is window.chat
    qtbot.keyClick(window, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    assert window.stack.currentWidget() is window.batch
    qtbot.keyClick(window, Qt.Key.Key_5, Qt.KeyboardModifier.ControlModifier)
    assert window.stack.currentWidget() is window.server
    # the Audit view takes the next place, shortcut included
    assert window.nav.item(5).text() == "Audit"
    qtbot.keyClick(window, Qt.Key.Key_6, Qt.KeyboardModifier.ControlModifier)
    assert window.current_view() == "audit" and window.stack.currentWidget() is window.audit
    assert window.audit.outcome is None and window.audit.models.encoder_made is None  # made when an audit first runs


def test_theme_choice_applies_and_persists(qtbot: Any, make_window: Any, home: Path) -> None:
    window = make_window()
    assert window.settings.theme == "system"
    window.theme_actions["dark"].trigger()
    assert QApplication.palette().color(QPalette.ColorRole.Window).name() == DARK["window"]
    assert DARK["accent"] in QApplication.instance().styleSheet()
    window.close()
    again = make_window()
    assert again.settings.theme == "dark" and again.theme_actions["dark"].isChecked()
    again.set_theme("light")
    assert QApplication.palette().color(QPalette.ColorRole.Window).name() == LIGHT["window"]


def test_settings_persist_between_runs(qtbot: Any, make_window: Any, home: Path) -> None:
    window = make_window()
    window.resize(QSize(790, 700))  # the offscreen screen is 800 x 800; restoring clamps to it
    chat = window.chat
    chat.sampling.temperature.setValue(0.35)
    chat.sampling.top_k.setValue(17)
    chat.sampling.seed.setValue(99)
    chat.sampling.system_prompt.setPlainText("Be terse.")
    window.show_view("ledger")
    window.close()
    assert (home / "settings.ini").exists()
    again = make_window()
    assert again.size() == QSize(790, 700)
    assert again.current_view() == "ledger"
    params = again.chat.sampling.params()
    assert (params.temperature, params.top_k, params.seed) == (0.35, 17, 99)
    assert again.chat.sampling.system_prompt.toPlainText() == "Be terse."
    assert AppSettings().sampling() == SamplingParams(temperature=0.35, top_k=17, seed=99,
                                                      max_tokens=params.max_tokens)


def test_reopening_a_conversation_restores_its_turns(qtbot: Any, make_window: Any, home: Path) -> None:
    window = make_window()
    chat = window.chat
    for text in ("First question.", "Second question."):
        chat.composer.setPlainText(text)
        with qtbot.waitSignal(chat.turn_finished, timeout=60_000):
            chat.send()
    first_id = chat.conversation.id
    answers = [b.text for b in chat.transcript.bubbles]
    first_temperature = chat.sampling.temperature.value()
    chat.new_conversation()
    chat.sampling.temperature.setValue(0.2)
    assert chat.transcript.bubbles == [] and chat.conversation is None
    chat.composer.setPlainText("Another topic.")
    with qtbot.waitSignal(chat.turn_finished, timeout=60_000):
        chat.send()
    qtbot.waitUntil(lambda: len(chat.conversations.ids()) == 2, timeout=5_000)
    assert chat.conversations.ids()[1] == first_id  # most recent first
    item = chat.conversations.list.item(1)
    qtbot.mouseClick(chat.conversations.list.viewport(), Qt.MouseButton.LeftButton,
                     pos=chat.conversations.list.visualItemRect(item).center())
    qtbot.waitUntil(lambda: chat.conversation is not None and chat.conversation.id == first_id, timeout=5_000)
    assert [b.text for b in chat.transcript.bubbles] == answers
    assert chat.title.text() == "First question."
    assert chat.sampling.temperature.value() == first_temperature  # its own sampling comes back
    # rename in place (widget -> ledger)
    qtbot.waitUntil(lambda: window.db.pending == 0, timeout=5_000)
    chat.conversations.list.item(1).setText("Questions")
    qtbot.waitUntil(lambda: chat.title.text() == "Questions", timeout=5_000)
    window.close()
    # a new run reopens the last conversation from the ledger
    again = make_window()
    qtbot.waitUntil(lambda: again.chat.conversation is not None, timeout=5_000)
    assert again.chat.conversation.id == first_id and again.chat.conversation.title == "Questions"
    assert [b.text for b in again.chat.transcript.bubbles] == answers
    assert [t.prompt for t in again.chat.turns] == ["First question.", "Second question."]
    assert all("tokens" in b.details.text() for b in again.chat.transcript.bubbles if b.role == "assistant")
