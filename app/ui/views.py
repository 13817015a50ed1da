"""What the main window asks of a view, with defaults that do nothing: a view is a QWidget that
also derives from View (`class LabView(View, QWidget)`) and overrides what it needs.

The window lists its views once (main_window.py) and, for each: adds a navigation entry from
`key` and `nav_title`, calls on_ledger_ready() once the ledger is open, on_ledger_changed() after
rows were logged anywhere, saves and restores the state of its splitters(), and calls shutdown()
when it closes (a view that runs jobs cancels them there and waits for their threads).
"""

from __future__ import annotations

from PySide6.QtWidgets import QSplitter


class View:
    """A view of the main window (UI thread). Subclasses set `key` (settings, icon, shortcuts) and
    `nav_title` (its navigation entry)."""

    key: str = ""
    nav_title: str = ""

    def on_ledger_ready(self) -> None:
        """The ledger is open: read what the view shows."""

    def on_ledger_changed(self) -> None:
        """Rows were logged (chat, batch, server, import): refresh what depends on them."""

    def shutdown(self) -> None:
        """The window closes: stop the view's work and wait for its threads."""

    def splitters(self) -> dict[str, QSplitter]:
        """Splitters whose state is kept between runs, by settings name: by default the view's
        `splitter`, under its key, if it has one."""
        splitter = getattr(self, "splitter", None)
        return {self.key: splitter} if isinstance(splitter, QSplitter) else {}
