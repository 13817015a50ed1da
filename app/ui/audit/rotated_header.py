"""A horizontal header whose columns from `first_rotated` on have their titles written bottom to
top, so that many narrow columns (one level chip per pattern) fit beside a wide first column."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QHeaderView, QStyle, QStyleOptionHeader, QWidget

PADDING = 8


class RotatedHeader(QHeaderView):
    """Column titles turned 90 degrees from column `first_rotated` on (UI thread)."""

    def __init__(self, first_rotated: int, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.first_rotated = first_rotated
        self.setSectionsClickable(True)
        self.setHighlightSections(False)

    def _title(self, section: int) -> str:
        value = self.model().headerData(section, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole) \
            if self.model() else None
        return str(value or "")

    def sizeHint(self) -> QSize:
        """Tall enough for the longest rotated title."""
        hint = super().sizeHint()
        metrics = self.fontMetrics()
        longest = max((metrics.horizontalAdvance(self._title(s)) for s in range(self.first_rotated, self.count())),
                      default=0)
        return QSize(hint.width(), max(hint.height(), longest + 2 * PADDING))

    def sectionSizeFromContents(self, logical: int) -> QSize:
        """A rotated column is as wide as one line of text."""
        size = super().sectionSizeFromContents(logical)
        if logical >= self.first_rotated:
            return QSize(self.fontMetrics().height() + PADDING, size.height())
        return size

    def paintSection(self, painter: QPainter, rect: QRect, logical: int) -> None:  # noqa: N802 - Qt override
        """Draw the section's frame as usual, and its title rotated when it is a rotated column."""
        if logical < self.first_rotated:
            super().paintSection(painter, rect, logical)
            return
        option = QStyleOptionHeader()
        self.initStyleOption(option)
        option.rect = rect
        option.section = logical
        option.text = ""
        painter.save()
        self.style().drawControl(QStyle.ControlElement.CE_Header, option, painter, self)
        painter.translate(rect.center().x() + self.fontMetrics().ascent() / 2 - 1, rect.bottom() - PADDING)
        painter.rotate(-90)
        painter.drawText(0, 0, self._title(logical))
        painter.restore()
