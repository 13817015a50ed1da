"""Chat: streamed tokens, Stop, Regenerate, and every turn logged through generate_logged."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from app.core.models.bundled import default_params
from app.core.models.chat_model import CHAT_MODEL_FILE
from app.core.models.sampling import SamplingParams
from app.ui.chat.message_bubble import MessageBubble
from app.ui.main_window import MainWindow
from tests.ui.helpers import TURN_TIMEOUT_MS, ledger_rows


def send(qtbot: Any, window: MainWindow, text: str) -> None:
    """Type into the composer and press Ctrl+Enter, as a person would."""
    chat = window.chat
    chat.composer.setFocus()
    qtbot.keyClicks(chat.composer, text)
    qtbot.keyClick(chat.composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)


def wait_turn(qtbot: Any, window: MainWindow) -> Any:
    with qtbot.waitSignal(window.chat.turn_finished, timeout=TURN_TIMEOUT_MS) as blocker:
        pass
    return blocker.args[0]


def test_send_streams_tokens_into_a_bubble_and_logs_one_row(qtbot: Any, window: MainWindow, home: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    chat = window.chat
    seen_while_streaming: list[str] = []
    append = MessageBubble.append

    def append_and_watch(bubble: MessageBubble, piece: str) -> None:  # each token, as the turn hands it over
        append(bubble, piece)
        if window.service.generating:
            seen_while_streaming.append(chat.transcript.bubbles[-1].text)

    monkeypatch.setattr(MessageBubble, "append", append_and_watch)
    with qtbot.waitSignal(chat.turn_finished, timeout=TURN_TIMEOUT_MS) as finished:
        send(qtbot, window, "Name three fruits.")
        assert chat.composer.toPlainText() == ""
        assert window.service.generating and not chat.send_button.isEnabled() and chat.stop_button.isEnabled()
    outcome = finished.args[0]
    # model -> widget: the text grew token by token while the turn was running
    assert len(seen_while_streaming) >= 2 and seen_while_streaming[0] != seen_while_streaming[-1]
    bubbles = chat.transcript.bubbles
    assert [b.role for b in bubbles] == ["user", "assistant"]
    assert bubbles[0].text == "Name three fruits."
    assert bubbles[1].text == outcome.result.text and outcome.result.text.strip()
    assert f"#{outcome.generation_id}" in bubbles[1].details.text()
    assert "tokens" in bubbles[1].details.text()
    # widget -> ledger: one committed row, from the chat, in this conversation, with the panel's sampling
    rows = ledger_rows(home)
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == outcome.generation_id and row["source"] == "chat" and row["status"] == "ok"
    assert row["response"] == bubbles[1].text and row["prompt"] == "Name three fruits."
    assert row["conversation_id"] == chat.conversation.id
    assert json.loads(row["params"])["max_tokens"] == chat.sampling.max_tokens.value()
    conversations = ledger_rows(home, "SELECT * FROM conversations")
    assert [c["title"] for c in conversations] == ["Name three fruits."]
    # the status bar and the ledger table pick the new row up
    qtbot.waitUntil(lambda: window.ledger.model.rowCount() == 1, timeout=5_000)
    qtbot.waitUntil(lambda: window.ledger.model.summary(0) is not None, timeout=5_000)
    assert window.ledger.model.summary(0).id == outcome.generation_id
    qtbot.waitUntil(lambda: window.status.ledger_label.text().startswith("Ledger: 1 row ·"), timeout=5_000)
    assert "tok/s" in window.status.rate_label.text()
    assert window.chat.conversations.ids() == [chat.conversation.id]


def test_stop_mid_stream_logs_a_cancelled_row_with_the_partial_text(qtbot: Any, window: MainWindow,
                                                                    home: Path) -> None:
    chat = window.chat
    chat.sampling.max_tokens.setValue(400)  # widget -> request
    emitted: list[str] = []
    # counted on the model thread, as the worker emits, to measure how far generation ran after Stop
    window.service.worker.progressed.connect(lambda _job, text: emitted.append(text),
                                             Qt.ConnectionType.DirectConnection)
    send(qtbot, window, "Tell me a long story about a lighthouse keeper.")
    qtbot.waitUntil(lambda: len(chat.transcript.bubbles[-1].text) > 0 and len(emitted) >= 3, timeout=TURN_TIMEOUT_MS)
    with qtbot.waitSignal(chat.turn_finished, timeout=TURN_TIMEOUT_MS) as finished:
        qtbot.keyClick(chat.composer, Qt.Key.Key_Escape)
        emitted_at_stop = len(emitted)
    outcome = finished.args[0]
    assert outcome.result.status == "cancelled"
    assert len(emitted) <= emitted_at_stop + 1  # stops within one token
    row = ledger_rows(home)[-1]
    assert row["status"] == "cancelled" and row["finish_reason"] == "cancelled"
    assert row["response"] and row["response"] == "".join(emitted)
    assert chat.transcript.bubbles[-1].text == row["response"]
    assert "stopped" in chat.transcript.bubbles[-1].details.text()
    assert json.loads(row["params"])["max_tokens"] == 400
    assert row["completion_tokens"] < 400
    assert chat.send_button.isEnabled() and not chat.stop_button.isEnabled()


def test_regenerate_logs_a_new_answer_that_replaces_the_last(qtbot: Any, window: MainWindow, home: Path) -> None:
    chat = window.chat
    send(qtbot, window, "Say hello.")
    first = wait_turn(qtbot, window)
    with qtbot.waitSignal(chat.turn_finished, timeout=TURN_TIMEOUT_MS) as finished:
        qtbot.mouseClick(chat.regenerate_button, Qt.MouseButton.LeftButton)
    second = finished.args[0]
    rows = ledger_rows(home)
    assert [r["id"] for r in rows] == [first.generation_id, second.generation_id]
    assert rows[1]["parent_id"] == rows[0]["parent_id"] is None
    assert json.loads(rows[1]["meta"]) == {"regenerates": first.generation_id}
    assert rows[1]["prompt"] == "Say hello." and rows[1]["conversation_id"] == rows[0]["conversation_id"]
    assert [b.role for b in chat.transcript.bubbles] == ["user", "assistant"]
    assert chat.transcript.bubbles[1].text == second.result.text
    assert [t.generation_id for t in chat.turns] == [second.generation_id]


def test_a_second_turn_carries_the_history_and_links_its_parent(qtbot: Any, window: MainWindow, home: Path) -> None:
    send(qtbot, window, "My name is Ada.")
    first = wait_turn(qtbot, window)
    send(qtbot, window, "What is my name?")
    second = wait_turn(qtbot, window)
    row = ledger_rows(home)[-1]
    assert row["parent_id"] == first.generation_id and row["id"] == second.generation_id
    messages = json.loads(row["messages"])
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == "My name is Ada." and messages[1]["content"] == first.result.text
    assert len(window.chat.transcript.bubbles) == 4


def test_system_prompt_from_the_panel_is_sent_and_logged(qtbot: Any, window: MainWindow, home: Path) -> None:
    window.chat.sampling.system_prompt.setPlainText("Answer in one word.")
    window.chat.sampling.seed.setValue(1234)
    send(qtbot, window, "Favourite colour?")
    wait_turn(qtbot, window)
    row = ledger_rows(home)[-1]
    assert row["system_prompt"] == "Answer in one word." and row["seed"] == 1234
    assert json.loads(row["messages"])[0] == {"role": "system", "content": "Answer in one word."}
    stored = ledger_rows(home, "SELECT system_prompt FROM conversations")
    assert stored == [{"system_prompt": "Answer in one word."}]


def test_a_prompt_longer_than_the_context_shows_the_logged_failure(qtbot: Any, window: MainWindow,
                                                                   home: Path) -> None:
    chat = window.chat
    chat.composer.setPlainText("many words " * 900)  # well past the 1024-token context
    chat.send()
    # the turn's error callback shows its message in the hint
    qtbot.waitUntil(lambda: "longer than the model's context" in chat.hint.text(), timeout=TURN_TIMEOUT_MS)
    row = ledger_rows(home)[-1]
    assert row["status"] == "error" and "context" in row["error"]
    qtbot.waitUntil(lambda: [t.generation_id for t in chat.turns] == [row["id"]], timeout=5_000)
    assert "The generation failed" in chat.transcript.bubbles[-1].body.text()
    assert "context" in chat.hint.text()
    assert chat.send_button.isEnabled()
    # the next turn starts afresh: the failed one is not part of its history
    send(qtbot, window, "Hello again.")
    outcome = wait_turn(qtbot, window)
    last = ledger_rows(home)[-1]
    assert last["id"] == outcome.generation_id and last["parent_id"] is None
    assert json.loads(last["messages"]) == [{"role": "user", "content": "Hello again."}]
    assert chat.hint.text() == ""


def test_a_long_title_keeps_the_panel_widths(qtbot: Any, window: MainWindow) -> None:
    """At 1500x950 a 200-character conversation title is elided: the conversation list and the
    sampling panel keep their widths and the panel gets no horizontal scrollbar."""
    chat = window.chat
    window.resize(1500, 950)
    window.show_view("chat")
    qtbot.waitUntil(lambda: window.width() == 1500, timeout=5_000)
    send(qtbot, window, "Hello.")
    wait_turn(qtbot, window)
    qtbot.wait(50)
    before = (chat.conversations.width(), chat.side.width())
    assert not chat.side.horizontalScrollBar().isVisible()
    title = ("A conversation about lighthouses, tides, the keepers who lived in them and the lamps they "
             "trimmed every night, written down so that nobody forgets how long and lonely those nights were " * 2)[:199] + "s"
    assert len(title) == 200
    chat.conversations.renamed.emit(chat.conversation.id, title)  # as a rename in the list does
    chat.reload_conversations()
    qtbot.waitUntil(lambda: chat.conversations.list.count() == 1
                    and chat.conversations.list.item(0).text() == title, timeout=5_000)
    qtbot.wait(50)
    assert chat.title.text() == title and chat.title.toolTip() == title  # elided on screen, whole on hover
    assert (chat.conversations.width(), chat.side.width()) == before
    assert not chat.side.horizontalScrollBar().isVisible()
    assert chat.side.widget().width() <= chat.side.viewport().width()
    assert chat.header.model_box.isVisible() and chat.header.model_box.currentText()


def test_the_header_shows_the_model_and_switches_it(qtbot: Any, window: MainWindow, home: Path) -> None:
    """The conversation starts on the bundled chat model; picking Gemma in the header loads it, the
    next turn is logged with Gemma's sha256 and the panel takes Gemma's sampling defaults."""
    chat = window.chat
    box = chat.header.model_box
    qtbot.waitUntil(lambda: box.count() == 2 and box.currentData() == window.service.loaded.sha256, timeout=5_000)
    chat_sha = window.service.loaded.sha256
    assert window.service.loaded.info.file_name == CHAT_MODEL_FILE and box.currentText() == "SmolLM2 135M Instruct"
    qtbot.mouseClick(chat.sampling.reset_button, Qt.MouseButton.LeftButton)  # the chat model's own defaults
    assert chat.sampling.params() == default_params(CHAT_MODEL_FILE)
    chat.sampling.max_tokens.setValue(48)
    chat.sampling.seed.setValue(1)
    send(qtbot, window, "What is the capital of France? Answer in one sentence.")
    first = wait_turn(qtbot, window)
    assert "Paris" in first.result.text
    gemma_index = box.findText("Gemma 3 270M (base)")
    gemma_sha = box.itemData(gemma_index)
    max_tokens = chat.sampling.max_tokens.value()
    with qtbot.waitSignal(window.service.model_loaded, timeout=60_000):
        box.setCurrentIndex(gemma_index)
        box.activated.emit(gemma_index)  # as a pick in the list does
    qtbot.waitUntil(lambda: box.currentData() == gemma_sha, timeout=5_000)
    assert chat.sampling.params() == replace(SamplingParams(), max_tokens=max_tokens, seed=1)  # Gemma's defaults
    send(qtbot, window, "What is the capital of Italy?")
    wait_turn(qtbot, window)
    rows = ledger_rows(home)
    assert [r["model_sha256"] for r in rows] == [chat_sha, gemma_sha]
    assert rows[0]["conversation_id"] == rows[1]["conversation_id"] and rows[1]["parent_id"] == rows[0]["id"]
    assert ledger_rows(home, "SELECT model_sha256 FROM conversations")[0]["model_sha256"] == gemma_sha


def test_the_sampling_panel_restores_a_conversations_stored_sampling(qtbot: Any) -> None:
    """A conversation goes on with the sampling it last used; settings that are not a mapping, or that
    another version wrote, leave the panel as it is."""
    from app.ui.chat.sampling_panel import SamplingPanel

    panel = SamplingPanel()
    qtbot.addWidget(panel)
    stored = replace(SamplingParams(), temperature=0.3, top_k=12, max_tokens=77, seed=5)
    panel.restore({**stored.as_dict(), "not_a_sampling_key": 1})
    assert panel.params() == stored
    for unusable in (None, "0.3", {"temperature": "hot"}, {"max_tokens": -5}):
        panel.restore(unusable)
        assert panel.params() == stored
