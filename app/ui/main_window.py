"""Stillroom's main window: navigation between views, menus, status bar, drag-and-drop of GGUF files.

It owns the two long-lived threads (ModelService: the model and its ledger connection; DbExecutor:
the UI's reads), starts them once the window is on screen (start()), and stops them on close.
Its views are listed once, in order, in __init__ (`self.views`): each is a views.View and gets a
navigation entry, a View-menu item and Ctrl+<its number>, is told when the ledger is ready and
when it changes, has its splitters saved, and is shut down on close. Adding a view is adding it
to that list.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDesktopServices, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.paths import data_dir, ledger_path
from app.ui.audit.audit_view import AuditView
from app.ui.batch.batch_view import BatchView
from app.ui.chat.chat_view import ChatView
from app.ui.dialogs import show_error, show_info
from app.ui.environment_dialog import open_environment_check
from app.ui.icons import app_icon, tinted_icon
from app.ui.import_dialog import ImportDialog
from app.ui.lab.lab_view import LabView
from app.ui.ledger.ledger_view import LedgerView
from app.ui.models.model_view import ModelView
from app.ui.provenance import ProvenanceView
from app.ui.screen import ScreenView
from app.ui.server.server_view import ServerView
from app.ui.settings import THEMES, AppSettings
from app.ui.status_bar import StatusBar, ledger_stats
from app.ui.theme import apply_theme, colors, current_scheme
from app.ui.usage import UsageView
from app.ui.views import View
from app.workers.db_executor import DbExecutor
from app.workers.generator_thread import stop_all
from app.workers.model_service import ModelService

WINDOW_TITLE = "Stillroom"
DEFAULT_SIZE = QSize(1280, 820)
MINIMUM_SIZE = QSize(760, 520)
GGUF_FILTER = "GGUF models (*.gguf);;All files (*)"


class MainWindow(QMainWindow):
    """The one window (UI thread)."""

    def __init__(self, settings: AppSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or AppSettings()
        self.ledger_path = ledger_path()
        apply_theme(QApplication.instance(), self.settings.theme)
        self.setWindowTitle(WINDOW_TITLE)
        self.setWindowIcon(app_icon())
        self.setMinimumSize(MINIMUM_SIZE)
        self.setAcceptDrops(True)
        self.service = ModelService(self)
        self.settings.on_change = lambda summary, details: self.service.record_event(
            "settings_changed", summary, details)
        self.db = DbExecutor(self.ledger_path, self)
        self.chat = ChatView(self.service, self.db, self.settings)
        self.models = ModelView(self.service, self.db, self.settings)
        self.ledger = LedgerView(self.db, self.ledger_path)
        self.batch = BatchView(self.service, self.db)
        self.server = ServerView(self.service, self.db, self.ledger_path)
        self.audit = AuditView(self.db, self.ledger_path)
        self.usage = UsageView(self.db)
        self.views: list[View] = [self.chat, self.models, self.ledger, self.batch, self.server, self.audit,
                                  ProvenanceView(self.ledger_path), LabView(self.service, self.db, self.ledger_path),
                                  self.usage, ScreenView(self.ledger_path)]
        self.status = StatusBar()
        self.setStatusBar(self.status)
        self._view_keys: list[str] = []
        self._build_menus()
        self._build_navigation()
        for view in self.views:
            self.add_view(view)
        self._connect()
        self._restore()
        self._started = False
        self._closed = False

    # -- construction ----------------------------------------------------------------------------

    def _build_navigation(self) -> None:
        self.stack = QStackedWidget()
        self.nav = QListWidget()
        self.nav.setObjectName("Navigation")
        self.nav.setIconSize(QSize(20, 20))
        self.nav.setFixedWidth(168)
        self.nav.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.nav.currentRowChanged.connect(self._on_nav)
        brand = QLabel("Stillroom")
        brand.setObjectName("Brand")
        side = QWidget()
        side.setObjectName("SidebarPane")
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.setSpacing(0)
        side_layout.addWidget(brand)
        side_layout.addWidget(self.nav, 1)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(side)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

    def add_view(self, view: View) -> None:
        """Add a view (a View that is a QWidget): a navigation entry (icon assets/icons/<key>.svg if
        there is one), a View-menu item and Ctrl+<position> to reach it."""
        key, title = view.key, view.nav_title
        assert isinstance(view, QWidget)
        item = QListWidgetItem(title)
        item.setData(Qt.ItemDataRole.UserRole, key)
        self.nav.addItem(item)
        self.stack.addWidget(view)
        self._view_keys.append(key)
        number = len(self._view_keys)
        action = QAction(title, self)
        if number <= 9:
            action.setShortcut(QKeySequence(f"Ctrl+{number}"))
        action.triggered.connect(lambda: self.show_view(key))
        self.view_menu.insertAction(self._views_end, action)
        self._tint_icons()

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.add_model_action = file_menu.addAction("Add model…", QKeySequence.StandardKey.Open, self.add_model_dialog)
        self.import_action = file_menu.addAction("Import…", self.import_dialog)
        file_menu.addAction("Export ledger…", lambda: (self.show_view("ledger"),
                                                      self.ledger.export_dialog(selection_only=False)))
        file_menu.addAction("Open data folder", self._open_data_folder)
        file_menu.addSeparator()
        file_menu.addAction("Quit", QKeySequence.StandardKey.Quit, self.close)
        self.view_menu = bar.addMenu("&View")
        self._views_end = self.view_menu.addSeparator()
        theme_menu = self.view_menu.addMenu("Theme")
        group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for choice in THEMES:
            action = theme_menu.addAction(choice.capitalize())
            action.setCheckable(True)
            action.setChecked(choice == self.settings.theme)
            action.triggered.connect(lambda _=False, c=choice: self.set_theme(c))
            group.addAction(action)
            self.theme_actions[choice] = action
        ledger_menu = bar.addMenu("&Ledger")
        ledger_menu.addAction("Search the ledger", QKeySequence.StandardKey.Find, self._find)
        ledger_menu.addAction("Verify ledger", QKeySequence("Ctrl+Shift+V"), self._verify)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction("Environment check…", lambda: open_environment_check(self))
        help_menu.addAction("About Stillroom", self._about)

    def _connect(self) -> None:
        self.service.ledger_ready.connect(self._on_ledger_ready)
        self.service.busy.connect(self.status.set_busy)
        self.service.model_loaded.connect(self.status.set_model)
        self.service.model_unloaded.connect(lambda: self.status.set_model(None))
        self.service.failed.connect(lambda title, message: show_error(self, title, message))
        self.service.ledger_changed.connect(self._on_ledger_changed)
        self.chat.turn_finished.connect(lambda outcome: self.status.set_rate(outcome.result.tokens_per_s))
        self.models.add_requested.connect(self.add_model_dialog)
        self.ledger.verified.connect(self.status.set_chain)
        self.ledger.open_conversation.connect(self._open_conversation)
        self.status.chain_clicked.connect(self._verify)
        hints = QApplication.styleHints()
        hints.colorSchemeChanged.connect(self._on_system_scheme)

    def _restore(self) -> None:
        geometry = self.settings.geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(DEFAULT_SIZE)
        for name, splitter in self._splitters().items():
            state = self.settings.splitter_state(name)
            if state is not None:
                splitter.restoreState(state)
        self.show_view(self.settings.current_view)

    def _splitters(self) -> dict[str, QSplitter]:
        return {name: splitter for view in self.views for name, splitter in view.splitters().items()}

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the model thread (it opens the ledger, then the rest follows). Call once shown."""
        if not self._started:
            self._started = True
            self.status.set_busy("Opening the ledger…")
            self.service.start(self.ledger_path)

    def _on_ledger_ready(self, _path: str) -> None:
        self.db.start()
        self.service.load(self.settings.last_model, self.settings.load_options(), fall_back_to_default=True)
        for view in self.views:
            view.on_ledger_ready()
        self.db.submit(ledger_stats(self.ledger_path), self.status.set_ledger)
        self.status.set_chain_checking()
        self.ledger.verify(quiet=True)

    def _on_ledger_changed(self) -> None:
        self.db.submit(ledger_stats(self.ledger_path), self.status.set_ledger)
        for view in self.views:
            view.on_ledger_changed()

    def shutdown(self) -> None:
        """Save settings and stop every thread (waits for them; never terminates one)."""
        if self._closed:
            return
        self._closed = True
        self.settings.set_geometry(self.saveGeometry())
        for name, splitter in self._splitters().items():
            self.settings.set_splitter_state(name, splitter.saveState())
        self.settings.sync()
        for view in self.views:
            view.shutdown()
        stop_all()
        self.service.shutdown()
        self.db.stop()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)

    # -- actions ---------------------------------------------------------------------------------

    def show_view(self, key: str) -> None:
        """Switch to a view by key (chat, models, ledger, …); an unknown key shows the first."""
        self.nav.setCurrentRow(self._view_keys.index(key) if key in self._view_keys else 0)

    def current_view(self) -> str:
        """The key of the view shown."""
        return self._view_keys[max(0, self.nav.currentRow())]

    def import_dialog(self) -> ImportDialog:
        """Open File > Import… (not modal); rows it writes show up in the ledger view."""
        dialog = ImportDialog(self.ledger_path, self)
        dialog.imported.connect(lambda _rows: self._on_ledger_changed())
        dialog.finished.connect(dialog.deleteLater)
        dialog.show()
        return dialog

    def add_model_dialog(self) -> None:
        """Pick GGUF files to add."""
        paths, _ = QFileDialog.getOpenFileNames(self, "Add GGUF models", str(Path.home()), GGUF_FILTER)
        if paths:
            self.add_model_files(paths)

    def add_model_files(self, paths: list[str]) -> None:
        """Register model files on the model thread; a bad file opens an error dialog."""
        self.show_view("models")
        self.service.add_models(paths, self.models.options())

    def set_theme(self, choice: str) -> None:
        """Apply and remember a theme choice (system, light, dark)."""
        self.settings.theme = choice
        self.theme_actions[choice].setChecked(True)
        apply_theme(QApplication.instance(), choice)
        self._tint_icons()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_model_files(paths)

    # -- internals -------------------------------------------------------------------------------

    def _on_nav(self, row: int) -> None:
        self.stack.setCurrentIndex(row)
        self.settings.current_view = self.current_view()

    def _open_conversation(self, conversation_id: str) -> None:
        self.show_view("chat")
        self.chat.open_conversation(conversation_id)

    def _find(self) -> None:
        self.show_view("ledger")
        self.ledger.filters.focus_search()

    def _verify(self) -> None:
        self.show_view("ledger")
        self.status.set_chain_checking()
        self.ledger.verify()

    def _on_system_scheme(self, *_: object) -> None:
        if self.settings.theme == "system":
            self.set_theme("system")

    def _tint_icons(self) -> None:
        color = colors(current_scheme())["muted"]
        for row, key in enumerate(self._view_keys):
            self.nav.item(row).setIcon(tinted_icon(key, color))

    def _open_data_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(data_dir())))

    def _about(self) -> None:
        show_info(self, "Stillroom", "A workbench for local language models that keeps an honest, "
                  f"tamper-evident ledger of every generation.\n\nData folder: {data_dir()}")
