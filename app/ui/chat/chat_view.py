"""The Chat view: a conversation streamed from the model thread, every turn logged to the ledger.

Sending builds a GenerationRequest from the conversation's turns and hands it to ModelService,
which runs it through generate_logged on the model thread (the CLI's path). The turn's tokens
arrive in its callback on the UI thread and are appended to the last bubble; the finished row's
details replace the waiting state.
Conversations are read back through the DbExecutor, never on the UI thread.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.core.generation import LogContext
from app.core.models.bundled import default_params
from app.core.models.registry import list_models
from app.core.models.runner import LoadedModel
from app.core.models.sampling import GenerationRequest
from app.core.store.conversations import (
    UNTITLED,
    Conversation,
    Turn,
    conversation_turns,
    get_conversation,
    history_messages,
    list_conversations,
    title_from_prompt,
)
from app.core.store.ledger import utc_now
from app.core.textnorm import content_hash
from app.ui.chat.chat_header import ChatHeader
from app.ui.chat.conversation_list import ConversationList
from app.ui.chat.message_bubble import MessageBubble
from app.ui.chat.sampling_panel import SamplingPanel
from app.ui.chat.transcript import Transcript
from app.ui.settings import AppSettings
from app.ui.views import View
from app.workers.db_executor import DbExecutor
from app.workers.model_service import ModelService
from app.workers.model_jobs import ChatOutcome

CHAT_SOURCE = "chat"
LIST_MIN_WIDTH = 180
SIDE_MIN_WIDTH = 240
SEND_KEYS = ("Ctrl+Return", "Ctrl+Enter")


class ChatView(View, QWidget):
    """Conversations, transcript, composer and sampling panel (UI thread).

    Emits turn_finished(ChatOutcome) after a turn's row was committed and shown.
    """

    key, nav_title = "chat", "Chat"
    turn_finished = Signal(object)

    def __init__(self, service: ModelService, db: DbExecutor, settings: AppSettings,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._service, self._db, self._settings = service, db, settings
        self.conversation: Conversation | None = None
        self.turns: list[Turn] = []
        self._bubble: MessageBubble | None = None
        self._pending: tuple[str, int | None, bool] | None = None  # prompt, parent id, regenerating
        self._restore_prompt: str | None = None  # the text of a turn that failed before it was logged
        self._notice = ""  # why the last turn failed, shown until the next one
        self._sampling_model: str | None = None  # the model whose defaults the panel was set from
        self._fresh_sampling = not settings.has_sampling()  # nothing saved: the model's defaults apply
        self._build()
        self.sampling.set_params(settings.sampling())
        self.sampling.system_prompt.setPlainText(settings.system_prompt)
        self.sampling.changed.connect(self._save_defaults)
        service.model_loaded.connect(self._update_actions)
        service.model_loaded.connect(self._on_model_loaded)
        service.model_unloaded.connect(self._update_actions)
        service.model_unloaded.connect(self.reload_models)
        service.models_changed.connect(self.reload_models)
        service.busy.connect(self._update_actions)
        self._update_actions()

    # -- layout ----------------------------------------------------------------------------------

    def _build(self) -> None:
        self.conversations = ConversationList()
        self.conversations.opened.connect(self.open_conversation)
        self.conversations.new_requested.connect(self.new_conversation)
        self.conversations.renamed.connect(self._rename)
        self.header = ChatHeader(UNTITLED)
        self.header.model_chosen.connect(self.choose_model)
        self.title, self.settings_button = self.header.title, self.header.settings_button
        self.transcript = Transcript()
        self.composer = QPlainTextEdit()
        self.composer.setObjectName("Composer")
        self.composer.setPlaceholderText("Message the model…   Ctrl+Enter sends, Esc stops")
        self.composer.setTabChangesFocus(True)
        self.composer.setFixedHeight(92)
        self.send_button = QPushButton("Send")
        self.send_button.setProperty("primary", True)
        self.send_button.setToolTip("Send (Ctrl+Enter)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setProperty("danger", True)
        self.stop_button.setToolTip("Stop the answer after the current token (Esc)")
        self.regenerate_button = QPushButton("Regenerate")
        self.regenerate_button.setToolTip("Answer the last message again (Ctrl+R); both answers stay in the ledger")
        self.hint = QLabel()
        self.hint.setObjectName("Muted")
        buttons = QHBoxLayout()
        buttons.addWidget(self.hint, 1)
        buttons.addWidget(self.regenerate_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.send_button)
        self.send_button.clicked.connect(self.send)
        self.stop_button.clicked.connect(self.stop)
        self.regenerate_button.clicked.connect(self.regenerate)
        center = QWidget()
        center_layout = QVBoxLayout(center)
        center_layout.setContentsMargins(8, 0, 8, 0)
        center_layout.addWidget(self.header)
        center_layout.addWidget(self.transcript, 1)
        center_layout.addWidget(self.composer)
        center_layout.addLayout(buttons)
        self.sampling = SamplingPanel()
        self.side = side = QScrollArea()
        side.setWidgetResizable(True)
        side.setWidget(self.sampling)
        side.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        side.setMinimumWidth(max(SIDE_MIN_WIDTH, self.sampling.minimumSizeHint().width()
                                 + side.verticalScrollBar().sizeHint().width() + 2 * side.frameWidth()))
        self.conversations.setMinimumWidth(LIST_MIN_WIDTH)
        self.settings_button.toggled.connect(side.setVisible)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        for widget in (self.conversations, center, side):
            self.splitter.addWidget(widget)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([220, 700, 260])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 8)
        layout.addWidget(self.splitter)
        for keys in SEND_KEYS:
            QShortcut(QKeySequence(keys), self, self.send, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        # Esc belongs to the answer only while one is streaming (otherwise it cancels a rename)
        self.stop_shortcut = QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.stop,
                                       context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        QShortcut(QKeySequence("Ctrl+R"), self, self.regenerate, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        QShortcut(QKeySequence.StandardKey.New, self, self.new_conversation,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)

    # -- actions ---------------------------------------------------------------------------------

    def send(self) -> None:
        """Send the composer's text as the next user turn."""
        text = self.composer.toPlainText().strip()
        if not text or not self._can_generate():
            return
        if self.conversation is None:
            now = utc_now()
            self.conversation = Conversation(id=str(uuid.uuid4()), title=title_from_prompt(text),
                                             created_at=now, updated_at=now)
            self.title.setText(self.conversation.title)
        done = [turn for turn in self.turns if turn.status != "error"]
        parent = done[-1].generation_id if done else None
        self.composer.clear()
        self.transcript.add_message("user", text)
        self._start(history_messages(self.turns) + [{"role": "user", "content": text}], text, parent, None)

    def regenerate(self) -> None:
        """Answer the last user message again; the new row records which one it replaces."""
        if not self.turns or not self._can_generate():
            return
        last = self.turns[-1]
        self.transcript.remove_last(1)
        messages = history_messages(self.turns[:-1]) + [{"role": "user", "content": last.prompt}]
        self._start(messages, last.prompt, last.parent_id, last.generation_id)

    def stop(self) -> None:
        """Stop the answer being generated (takes effect after the current token)."""
        if self._service.generating:
            self._service.stop()
            self.hint.setText("Stopping…")

    def new_conversation(self) -> None:
        """Start an empty conversation (it is saved with its first turn)."""
        if self._service.generating:
            return
        self.conversation = None
        self.turns = []
        self.title.setText(UNTITLED)
        self.transcript.clear()
        self.conversations.select(None)
        self._settings.last_conversation = None
        self.composer.setFocus()
        self._update_actions()

    def open_conversation(self, conversation_id: str) -> None:
        """Show a stored conversation: its record and turns are read on the database thread."""
        if self._service.generating:
            self.conversations.select(self.conversation.id if self.conversation else None)
            return

        def job(db):  # type: ignore[no-untyped-def] - runs on the database thread
            return get_conversation(db, conversation_id), conversation_turns(db, conversation_id)

        self._db.submit(job, self._show_conversation, lambda exc: self.hint.setText(str(exc)))

    def choose_model(self, sha256: str) -> None:
        """Run this conversation on the registered model `sha256` from now on: load it in place of
        the loaded one (the sampling panel takes its defaults). Refused while an answer streams."""
        loaded = self._service.loaded
        if self._service.generating:
            self.header.set_current(loaded.sha256 if loaded else None)
            return
        if loaded is not None and loaded.sha256 == sha256:
            return
        self._settings.last_model = sha256
        self._service.load(sha256, self._settings.load_options())
        self._update_actions()

    def on_ledger_ready(self) -> None:
        """Read the conversations and reopen the last one."""
        self.reload_conversations()
        last = self._settings.last_conversation
        if last:
            self.open_conversation(last)

    def on_ledger_changed(self) -> None:
        """A turn or an import may have changed the conversations."""
        self.reload_conversations()

    def reload_models(self) -> None:
        """Refresh the header's model picker from the registry (read on the database thread)."""
        self._db.submit(list_models, self._show_models)

    def reload_conversations(self) -> None:
        """Refresh the conversation list from the ledger."""
        self._db.submit(list_conversations, self._show_conversation_list)

    # -- model thread events ---------------------------------------------------------------------

    def _start(self, messages: list[dict[str, str]], prompt: str, parent: int | None,
               regenerates: int | None) -> None:
        assert self.conversation is not None
        system = self.sampling.system_text or None
        params = self.sampling.params()
        self.conversation = replace(self.conversation, system_prompt=system,
                                    settings={"sampling": params.as_dict()})
        request = GenerationRequest("chat", messages=messages, system_prompt=system, params=params)
        meta = {"regenerates": regenerates} if regenerates is not None else {}
        context = LogContext(CHAT_SOURCE, conversation_id=self.conversation.id, parent_id=parent, meta=meta)
        self._bubble = self.transcript.add_message("assistant")
        self._bubble.show_waiting()
        self._pending = (prompt, parent, regenerates is not None)
        self._notice = ""
        self._service.chat(self.conversation, request, context, self._on_token, self._on_finished, self._on_failed)
        self._settings.last_conversation = self.conversation.id
        self._update_actions()

    def _on_model_loaded(self, loaded: LoadedModel) -> None:
        """A model was loaded (here, in Models, or by a server request): the picker shows it and the
        sampling panel takes its defaults when the model changed (keeping max tokens and seed), or
        all of them when nothing was ever saved."""
        defaults = default_params(loaded.info.file_name)
        self.sampling.set_defaults(defaults)
        previous, self._sampling_model = self._sampling_model, loaded.sha256
        if self._fresh_sampling:
            self._fresh_sampling = False
            self.sampling.reset()
        elif previous is not None and previous != loaded.sha256:  # a switch keeps the length and seed chosen
            current = self.sampling.params()
            self.sampling.set_params(replace(defaults, max_tokens=current.max_tokens, seed=current.seed))
        self.reload_models()

    def _show_models(self, models: list[dict]) -> None:
        loaded = self._service.loaded
        self.header.set_models(models, loaded.sha256 if loaded else None)

    def _on_token(self, text: str) -> None:
        if self._bubble is not None:
            self._bubble.append(text)

    def _on_finished(self, outcome: ChatOutcome) -> None:
        if self._pending is None or self._bubble is None:
            return
        prompt, parent, regenerating = self._pending
        result = outcome.result
        loaded = self._service.loaded
        turn = Turn(
            generation_id=outcome.generation_id, parent_id=parent, started_at=utc_now(), prompt=prompt,
            response=result.text, status=result.status, error=result.error, finish_reason=result.finish_reason,
            model_name=outcome.model_name, model_sha256=getattr(loaded, "sha256", None),
            prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
            tokens_per_s=result.tokens_per_s, duration_ms=result.duration_ms, seed=result.seed,
        )
        if regenerating and self.turns:
            self.turns[-1] = turn
        else:
            self.turns.append(turn)
        self._bubble.finish(turn)
        self._bubble, self._pending = None, None
        self._update_actions()
        self.reload_conversations()
        self.turn_finished.emit(outcome)

    def _on_failed(self, error: Exception) -> None:
        """A turn that could not run: show the conversation as the ledger has it (a failed turn
        that was logged appears as such), and give back the text of one that was not."""
        prompt = self._pending[0] if self._pending else ""
        self._bubble, self._pending = None, None
        self._notice = str(error)
        self._update_actions()
        if self.conversation is not None:
            self.open_conversation(self.conversation.id)
        if prompt and not self.composer.toPlainText().strip():
            self._restore_prompt = prompt
        self.reload_conversations()

    # -- database results ------------------------------------------------------------------------

    def _show_conversation(self, found: tuple[Conversation, list[Turn]]) -> None:
        conversation, turns = found
        if self._service.generating:
            return
        self.conversation, self.turns = conversation, turns
        self.title.setText(conversation.title)
        self.transcript.show_turns(turns)
        if self._restore_prompt is not None:
            if not turns or not _is_logged(turns[-1], self._restore_prompt):
                self.composer.setPlainText(self._restore_prompt)
            self._restore_prompt = None
        self.conversations.select(conversation.id)
        self.sampling.system_prompt.setPlainText(conversation.system_prompt or "")
        self.sampling.restore(conversation.settings.get("sampling"))  # it goes on with the sampling it last used
        self._settings.last_conversation = conversation.id
        if conversation.model_sha256 and self.header.model_box.findData(conversation.model_sha256) >= 0:
            self.choose_model(conversation.model_sha256)  # it goes on with the model it last used
        self._update_actions()

    def _show_conversation_list(self, conversations: list[Conversation]) -> None:
        current = self.conversation.id if self.conversation else None
        self.conversations.set_conversations(conversations, current)
        if self.conversation is not None:
            for item in conversations:
                if item.id == current and item.title != self.title.text():
                    self.title.setText(item.title)

    # -- helpers ---------------------------------------------------------------------------------

    def _rename(self, conversation_id: str, title: str) -> None:
        self._service.rename_conversation(conversation_id, title)
        if self.conversation is not None and self.conversation.id == conversation_id:
            self.conversation = replace(self.conversation, title=title)
            self.title.setText(title)

    def _can_generate(self) -> bool:
        return self._service.loaded is not None and not self._service.generating

    def _save_defaults(self) -> None:
        self._settings.set_sampling(self.sampling.params())
        self._settings.system_prompt = self.sampling.system_prompt.toPlainText()

    def _update_actions(self, *_: object) -> None:
        generating = self._service.generating
        loaded = self._service.loaded is not None
        self.send_button.setEnabled(loaded and not generating)
        self.stop_button.setEnabled(generating)
        self.regenerate_button.setEnabled(loaded and not generating and bool(self.turns))
        self.conversations.setEnabled(not generating)
        self.stop_shortcut.setEnabled(generating)
        if generating:
            self.hint.setText("Generating…  Esc stops")
        elif self._service.busy_text:
            self.hint.setText(self._service.busy_text)
        elif not loaded:
            self.hint.setText("No model loaded: load one in Models")
        else:
            self.hint.setText(self._notice)


def _is_logged(turn: Turn, prompt: str) -> bool:
    """Whether `turn` is the logged row of `prompt` (a refused over-long prompt is logged as an
    excerpt, so its hash decides)."""
    return turn.prompt == prompt or (turn.prompt_hash is not None and turn.prompt_hash == content_hash(prompt))
