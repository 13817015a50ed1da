"""The workflow report: a table of workflows x patterns with coloured levels, the selected workflow's
signals, reasons and benign look-alikes, and each pattern's 'about' panel (UI thread)."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.core.audit.patterns import PatternLibrary
from app.core.audit.report import INTRO, LEVEL_COLOURS, _signal_rows
from app.core.audit.run import AuditResult, WorkflowAudit
from app.ui.audit.rotated_header import RotatedHeader

FIXED_COLUMNS = ("workflow", "generations")
# compact level chips: a letter on the level's colour (the word is the tooltip and UserRole data)
CHIPS = {"none": "\u00b7", "low": "L", "medium": "M", "high": "H"}
WORKFLOW_COLUMN_MAX = 190
NO_SELECTION = "Select a workflow to read its signals, the reasons for each level and the benign look-alikes."


class ReportTable(QTableWidget):
    """Workflows (rows) x patterns (columns of compact level chips under rotated titles, so that
    every pattern is visible beside the workflow names at 1280 x 800). Emits
    workflow_selected(name or '') and pattern_clicked(pattern_id) when a pattern's column header is
    clicked."""

    workflow_selected = Signal(str)
    pattern_clicked = Signal(str)

    def __init__(self) -> None:
        super().__init__(0, len(FIXED_COLUMNS))
        self.pattern_ids: list[str] = []
        self._shown: dict[str, tuple] = {}  # what each workflow's row shows now (_row_key)
        self.setHorizontalHeaderLabels(list(FIXED_COLUMNS))
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.setHorizontalHeader(RotatedHeader(len(FIXED_COLUMNS), self))
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().sectionClicked.connect(self._on_header)
        self.itemSelectionChanged.connect(lambda: self.workflow_selected.emit(self.selected_workflow()))

    def set_result(self, result: AuditResult, library: PatternLibrary) -> None:
        """Fill the table from an audit (one row per workflow, one column per pattern). After a
        refresh with the same workflows and patterns only the rows that changed are rewritten."""
        rows = {w.name: _row_key(w) for w in result.workflows}
        same_shape = list(rows) == list(self._shown) and self.pattern_ids == (
            [v.id for v in result.workflows[0].patterns] if result.workflows else list(library.pattern_ids))
        header = self.horizontalHeader()
        # sized to their contents once, not after every cell (that is quadratic in the rows)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.setUpdatesEnabled(False)
        try:
            if same_shape:
                for row, workflow in enumerate(result.workflows):
                    if self._shown[workflow.name] != rows[workflow.name]:
                        self._fill_row(row, workflow)
            else:
                self._fill(result, library)
        finally:
            self.setUpdatesEnabled(True)
            header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
            # the workflow column: as wide as its names, up to a cap, so every pattern's chip stays in view
            header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
            self.resizeColumnToContents(0)
            self.setColumnWidth(0, min(self.columnWidth(0), WORKFLOW_COLUMN_MAX))
        self._shown = rows

    def _fill(self, result: AuditResult, library: PatternLibrary) -> None:
        # the verdicts' order (the scorer's), which need not be the library file's
        self.pattern_ids = [v.id for v in result.workflows[0].patterns] if result.workflows else \
            list(library.pattern_ids)
        self.clearContents()
        self.setColumnCount(len(FIXED_COLUMNS) + len(self.pattern_ids))
        # each pattern's short_name, narrow enough for every pattern side by side (the full name is the tooltip)
        self.setHorizontalHeaderLabels([*FIXED_COLUMNS, *(library.patterns[p].short_name for p in self.pattern_ids)])
        for column, pid in enumerate(self.pattern_ids, len(FIXED_COLUMNS)):
            header = self.horizontalHeaderItem(column)
            header.setToolTip(f"{library.patterns[pid].name}: {library.patterns[pid].summary}\n"
                              "Click for what this pattern is and why it is flagged.")
            header.setData(Qt.ItemDataRole.UserRole, pid)
        self.setRowCount(len(result.workflows))
        for row, workflow in enumerate(result.workflows):
            self._fill_row(row, workflow)

    def _fill_row(self, row: int, workflow: WorkflowAudit) -> None:
        name = QTableWidgetItem(workflow.name)
        name.setData(Qt.ItemDataRole.UserRole, workflow.name)
        self.setItem(row, 0, name)
        count = QTableWidgetItem(str(workflow.generations))
        count.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.setItem(row, 1, count)
        for verdict in workflow.patterns:
            column = len(FIXED_COLUMNS) + self.pattern_ids.index(verdict.id)
            cell = QTableWidgetItem(CHIPS[verdict.level])
            cell.setData(Qt.ItemDataRole.UserRole, verdict.level)
            cell.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            cell.setBackground(QBrush(QColor(LEVEL_COLOURS[verdict.level])))
            cell.setForeground(QBrush(QColor("#ffffff")))
            cell.setToolTip(f"{verdict.name}: {verdict.level} ({verdict.hits} hits)")
            self.setItem(row, column, cell)

    def level(self, workflow: str, pattern_id: str) -> str | None:
        """The level shown for a workflow and pattern (None if absent)."""
        for row in range(self.rowCount()):
            if self.item(row, 0).text() == workflow:
                return self.item(row, len(FIXED_COLUMNS) + self.pattern_ids.index(pattern_id)).data(
                    Qt.ItemDataRole.UserRole)
        return None

    def select_workflow(self, name: str) -> None:
        """Select a workflow's row (model -> widget)."""
        for row in range(self.rowCount()):
            if self.item(row, 0).text() == name:
                self.selectRow(row)
                return

    def selected_workflow(self) -> str:
        """The selected workflow's name, or ''."""
        rows = self.selectionModel().selectedRows()
        return self.item(rows[0].row(), 0).text() if rows else ""

    def _on_header(self, column: int) -> None:
        if column >= len(FIXED_COLUMNS):
            self.pattern_clicked.emit(self.pattern_ids[column - len(FIXED_COLUMNS)])


def _badge(level: str) -> str:
    return (f"<span style='background:{LEVEL_COLOURS[level]};color:#fff'>&nbsp;{html.escape(level)}&nbsp;</span>")


def workflow_html(workflow: WorkflowAudit) -> str:
    """The selected workflow in plain language: signals, then every pattern that is not 'none' with its
    reasons and benign look-alikes; pattern names link to their about panel (pattern:<id>)."""
    esc = html.escape
    parts = [f"<h3>{esc(workflow.name)}</h3><p>{workflow.generations} generations.</p>"]
    for group in workflow.substreams:
        examples = ", ".join(str(i) for i in group.examples)
        parts.append(f"<p style='background:#fff8e6'>Sub-stream: {esc(group.sentence)}. "
                     f"Example generations: {esc(examples)}.</p>")
    shown = [v for v in workflow.patterns if v.level != "none"]
    for verdict in sorted(shown, key=lambda v: -["none", "low", "medium", "high"].index(v.level)):
        parts.append(f"<h4><a href='pattern:{esc(verdict.id)}'>{esc(verdict.name)}</a> {_badge(verdict.level)}</h4><ul>")
        parts += [f"<li>{esc(reason)}</li>" for reason in verdict.reasons]
        parts.append("</ul>")
        if verdict.lookalikes:
            parts.append("<p><i>Benign look-alikes:</i></p><ul>")
            parts += [f"<li><b>{esc(item['name'])}</b>: {esc(item['description'])} "
                      f"<i>How to tell:</i> {esc(item['how_to_tell'])}</li>" for item in verdict.lookalikes]
            parts.append("</ul>")
    quiet = [v.name for v in workflow.patterns if v.level == "none"]
    if quiet:
        parts.append(f"<p>No resemblance: {esc(', '.join(quiet))}.</p>")
    if not shown:
        parts.append("<p>This workflow resembles none of the patterns.</p>")
    parts.append("<table cellspacing='0' cellpadding='3'>")
    parts += [f"<tr><td>{esc(label)}</td><td><b>{esc(value)}</b></td></tr>"
              for label, value in _signal_rows(workflow.signals.as_dict())]
    parts.append("</table>")
    return "".join(parts)


def pattern_html(library: PatternLibrary, pattern_id: str) -> str:
    """A pattern's about panel: definition, why it is flagged, sources and benign look-alikes, in words
    an educator could project."""
    esc = html.escape
    pattern = library.patterns[pattern_id]
    parts = [f"<h2>{esc(pattern.name)}</h2><p><i>{esc(pattern.summary)}</i></p>",
             f"<h4>What it is</h4><p>{esc(pattern.definition)}</p>",
             f"<h4>Why it is flagged</h4><p>{esc(pattern.why_flagged)}</p>", "<h4>Sources</h4><ul>"]
    for source in pattern.sources:
        title = esc(source.title)
        if source.url:
            title = f"<a href='{esc(source.url)}'>{title}</a>"
        extra = f" (reported by {esc(', '.join(source.reported_by))})" if source.reported_by else ""
        parts.append(f"<li>{title}, {esc(source.publisher)}, {esc(source.date)}{extra}</li>")
    parts.append("</ul><h4>Benign look-alikes</h4><ul>")
    parts += [f"<li><b>{esc(item.name)}</b>: {esc(item.description)} <i>How to tell:</i> {esc(item.how_to_tell)}</li>"
              for item in pattern.benign_lookalikes]
    parts.append("</ul>")
    if pattern.limitations:
        parts.append(f"<h4>Limitations</h4><p>{esc(pattern.limitations)}</p>")
    parts.append(f"<p style='color:#777'>{esc(INTRO)}</p>")
    return "".join(parts)


class InfoBrowser(QTextBrowser):
    """A read-only rich-text panel; links 'pattern:<id>' emit pattern_link(id), others open outside."""

    pattern_link = Signal(str)

    def __init__(self, placeholder: str = "") -> None:
        super().__init__()
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setPlaceholderText(placeholder)
        self.anchorClicked.connect(self._on_anchor)

    def _on_anchor(self, url) -> None:  # noqa: ANN001 - QUrl
        text = url.toString()
        if text.startswith("pattern:"):
            self.pattern_link.emit(text.split(":", 1)[1])
        else:
            from PySide6.QtGui import QDesktopServices

            QDesktopServices.openUrl(url)


PRESENT_ZOOM = 10


class PresentDialog(QDialog):
    """A pattern's about panel in large type, maximized, for a classroom projector (Esc closes)."""

    def __init__(self, html_text: str, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.browser = InfoBrowser()
        self.browser.setHtml(html_text)
        self.browser.zoomIn(PRESENT_ZOOM)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)


def _row_key(workflow: WorkflowAudit) -> tuple:
    """What a workflow's row shows: its count and each pattern's level and hits."""
    return workflow.generations, tuple((v.id, v.level, v.hits) for v in workflow.patterns)
