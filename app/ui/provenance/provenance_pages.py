"""The Provenance view's four pages (dataset, match and review, statement, card) and the small
table helpers they share; the view (provenance_view.py) adds the behaviour."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

TAB_DATASET, TAB_REVIEW, TAB_STATEMENT, TAB_CARD = range(4)
AUTOMATIC = "(detected)"
FIELD_ROLES = (("prompt", "Prompt field"), ("response", "Response field"), ("input", "Input field (Alpaca)"))
LICENSES = ("", "cc-by-4.0", "cc-by-sa-4.0", "cc0-1.0", "mit", "apache-2.0", "odc-by", "other")
DATASET_FILTER = "Datasets (*.jsonl *.ndjson *.json *.csv *.tsv *.parquet);;All files (*)"
CLIP = 160


def plain_label(text: str = "") -> QLabel:
    """A label that shows its text as plain text: dataset names, paths and fields come from files
    and must never be read as rich text (HTML, images, links)."""
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def set_card_markdown(browser: QTextBrowser, markdown: str) -> None:
    """Show a dataset card's Markdown without letting raw HTML in it through."""
    features = (QTextDocument.MarkdownFeature.MarkdownDialectGitHub
                | QTextDocument.MarkdownFeature.MarkdownNoHTML)
    browser.document().setMarkdown(markdown, features)


def clip(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= CLIP else flat[:CLIP - 1] + "…"


def table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(len(headers) - 1, QHeaderView.ResizeMode.Stretch)
    return table


def fill(table: QTableWidget, rows: list[list[Any]]) -> None:
    table.setRowCount(len(rows))
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            item = QTableWidgetItem(str(value))
            item.setToolTip(str(value))
            table.setItem(r, c, item)
    table.resizeColumnsToContents()


class ProvenancePages:
    """Builds the pages; mixed into ProvenanceView, whose slots the buttons call."""

    tabs: QTabWidget

    def _dataset_tab(self) -> QWidget:
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("JSON Lines, JSON, CSV or Parquet")
        self.path_edit.returnPressed.connect(lambda: self.choose_dataset(self.path_edit.text()))
        browse = QPushButton("Choose file…")
        browse.clicked.connect(self.choose_dialog)
        self.shape_label = plain_label()
        self.shape_label.setWordWrap(True)
        self.field_boxes: dict[str, QComboBox] = {}
        fields = QFormLayout()
        for role, label in FIELD_ROLES:
            box = QComboBox()
            box.addItem(AUTOMATIC)
            self.field_boxes[role] = box
            fields.addRow(label, box)
        self.apply_fields_button = QPushButton("Use these fields")
        self.apply_fields_button.setToolTip("Read the file again with the fields named here")
        self.apply_fields_button.setEnabled(False)
        self.apply_fields_button.clicked.connect(self.apply_fields)
        fields.addRow("", self.apply_fields_button)
        self.preview = table(["Row", "Prompt", "Response"])
        self.match_button = QPushButton("Match with the ledger")
        self.match_button.setEnabled(False)
        self.match_button.clicked.connect(self.start_match)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addLayout(row)
        layout.addWidget(self.shape_label)
        layout.addLayout(fields)
        layout.addWidget(QLabel("First rows"))
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.match_button, 0, Qt.AlignmentFlag.AlignRight)
        return page

    def _review_tab(self) -> QWidget:
        self.shares_label = plain_label()
        self.shares_label.setWordWrap(True)
        self.untraced_table = table(["Row", "Prompt", "Response"])
        self.near_table = table(["Row", "Generation", "Score", "Response"])
        self.export_button = QPushButton("Export untraced rows…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.export_dialog)
        self.models_table = table(["Model", "Quantization", "Generations", "sha256"])
        self.screening_label = plain_label()
        self.screening_label.setWordWrap(True)
        self.screen_check = QCheckBox("Screen the traced workflows with the audit")
        self.screen_check.setChecked(True)
        self.next_button = QPushButton("Next: declare and write")
        self.next_button.setEnabled(False)
        self.next_button.clicked.connect(lambda: self.tabs.setCurrentIndex(TAB_STATEMENT))
        sub = QTabWidget()
        sub.addTab(self.untraced_table, "Untraced rows")
        sub.addTab(self.near_table, "Edited rows (near)")
        sub.addTab(self.models_table, "Models")
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(self.shares_label)
        layout.addWidget(sub, 1)
        layout.addWidget(self.screening_label)
        buttons = QHBoxLayout()
        buttons.addWidget(self.screen_check)
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.next_button)
        layout.addLayout(buttons)
        return page

    def _statement_tab(self) -> QWidget:
        self.name_edit = QLineEdit()
        self.license_box = QComboBox()
        self.license_box.setEditable(True)
        self.license_box.addItems(LICENSES)
        self.description_edit = QPlainTextEdit()
        self.description_edit.setPlaceholderText("What the dataset holds and how it was made")
        self.intended_edit = QPlainTextEdit()
        self.intended_edit.setPlaceholderText("What the dataset is meant to be used for")
        self.out_edit = QLineEdit()
        choose = QPushButton("Choose folder…")
        choose.clicked.connect(self.out_dialog)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(choose)
        self.force_check = QCheckBox("Overwrite a README.md that Stillroom did not write")
        self.untraced_warning = QLabel("")
        self.untraced_warning.setObjectName("Warning")
        self.untraced_warning.setWordWrap(True)
        self.untraced_warning.setVisible(False)
        self.allow_untraced_check = QCheckBox("Sign it anyway, though no row is traced to the ledger")
        self.allow_untraced_check.setVisible(False)
        self.write_button = QPushButton("Write the three files")
        self.write_button.clicked.connect(self.write)
        page = QWidget()
        form = QFormLayout(page)
        form.addRow("Name", self.name_edit)
        form.addRow("License", self.license_box)
        form.addRow("Description", self.description_edit)
        form.addRow("Intended use", self.intended_edit)
        form.addRow("Output folder", out_row)
        form.addRow("", self.force_check)
        form.addRow("", self.untraced_warning)
        form.addRow("", self.allow_untraced_check)
        form.addRow("", self.write_button)
        return page

    def _card_tab(self) -> QWidget:
        self.paths_label = plain_label()
        self.paths_label.setWordWrap(True)
        self.paths_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.card = QTextBrowser()
        self.card.setOpenLinks(False)  # the card holds text from the dataset and the publisher
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(self.paths_label)
        layout.addWidget(self.card, 1)
        return page
