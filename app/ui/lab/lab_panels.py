"""The Lab view's result widgets: the teacher's answers, the learning-curve plots (pyqtgraph,
items created once and updated with setData) with the cost of each point, and the audit levels."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from app.core.audit.report import LEVEL_COLOURS
from app.core.lab.compare import CompareResult
from app.core.lab.lesson import BASELINE_COLOUR, HARD_COLOUR, SOFT_COLOUR
from app.core.lab.student import CurvePoint
from app.core.lab.tasks import TaskSet
from app.core.lab.teacher import TeacherAnswer

ANSWER_COLUMNS = ("Task", "Input", "Held out", "Answer", "Soft label", "Ledger id")
POINT_COLUMNS = ("Samples/task", "Teacher calls", "Tokens", "Seconds", "Hard", "Soft", "Baseline")


def make_table(columns: tuple[str, ...]) -> QTableWidget:
    """A read-only, row-selecting table with these column titles."""
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.setWordWrap(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    return table


class AnswersTable(QTableWidget):
    """The teacher's answers as they arrive (UI thread)."""

    def __init__(self, tasks: TaskSet, parent: QWidget | None = None) -> None:
        super().__init__(0, len(ANSWER_COLUMNS), parent)
        self._tasks = tasks
        self.setHorizontalHeaderLabels(ANSWER_COLUMNS)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.setWordWrap(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)

    def add(self, answer: TeacherAnswer) -> None:
        """Append one answer."""
        labels = self._tasks.tasks[answer.item.task].labels
        soft = ", ".join(f"{label} {p:.2f}" for label, p in zip(labels, answer.soft)) if answer.soft else "–"
        row = self.rowCount()
        self.insertRow(row)
        values = (answer.item.task, answer.item.text, "yes" if answer.item.held_out else "", answer.label or "(none)",
                  soft, str(answer.generation_id))
        for column, value in enumerate(values):
            self.setItem(row, column, QTableWidgetItem(value))


class CurvePanel(QWidget):
    """Agreement against teacher samples (hard, soft, baseline), the KL distance of each student
    from the teacher's probabilities, and a table of every point with its cost."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")
        self.plot.setTitle("Student-teacher agreement on held-out inputs", color="#1f2328")
        self.plot.setLabel("bottom", "teacher samples per task")
        self.plot.setLabel("left", "agreement (%)")
        self.plot.setLogMode(x=True, y=False)
        self.plot.setYRange(0, 100)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        legend = self.plot.addLegend(offset=(-10, 10))
        self.hard = self.plot.plot([], [], name="hard labels", pen=pg.mkPen(HARD_COLOUR, width=2),
                                   symbol="o", symbolBrush=HARD_COLOUR, symbolSize=7)
        self.soft = self.plot.plot([], [], name="soft labels", pen=pg.mkPen(SOFT_COLOUR, width=2),
                                   symbol="o", symbolBrush=SOFT_COLOUR, symbolSize=7)
        self.baseline = self.plot.plot([], [], name="majority baseline",
                                       pen=pg.mkPen(BASELINE_COLOUR, width=2, style=pg.QtCore.Qt.PenStyle.DashLine),
                                       symbol="s", symbolBrush=BASELINE_COLOUR, symbolSize=6)
        legend.setLabelTextColor("#1f2328")
        self.kl_plot = pg.PlotWidget()
        self.kl_plot.setBackground("w")
        self.kl_plot.setTitle("Distance from the teacher's probabilities (KL, lower is closer)", color="#1f2328")
        self.kl_plot.setLabel("bottom", "teacher samples per task")
        self.kl_plot.setLogMode(x=True, y=False)
        self.kl_plot.addLegend(offset=(-10, 10)).setLabelTextColor("#1f2328")
        self.hard_kl = self.kl_plot.plot([], [], name="hard-label student", pen=pg.mkPen(HARD_COLOUR, width=2),
                                         symbol="o", symbolBrush=HARD_COLOUR, symbolSize=7)
        self.soft_kl = self.kl_plot.plot([], [], name="soft-label student", pen=pg.mkPen(SOFT_COLOUR, width=2),
                                         symbol="o", symbolBrush=SOFT_COLOUR, symbolSize=7)
        self.table = make_table(POINT_COLUMNS)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 3)
        layout.addWidget(self.kl_plot, 2)
        layout.addWidget(self.table, 2)
        self.points: list[CurvePoint] = []

    def set_points(self, points: list[CurvePoint]) -> None:
        """Show a learning curve (an empty list clears it)."""
        self.points = list(points)
        xs = [float(p.samples) for p in points]
        self.hard.setData(xs, [p.hard_agreement * 100 for p in points])
        soft = [(x, p.soft_agreement * 100) for x, p in zip(xs, points) if p.soft_agreement is not None]
        self.soft.setData([x for x, _ in soft], [y for _, y in soft])
        self.baseline.setData(xs, [p.baseline_agreement * 100 for p in points])
        hard_kl = [(x, p.hard_kl) for x, p in zip(xs, points) if p.hard_kl is not None]
        soft_kl = [(x, p.soft_kl) for x, p in zip(xs, points) if p.soft_kl is not None]
        self.hard_kl.setData([x for x, _ in hard_kl], [y for _, y in hard_kl])
        self.soft_kl.setData([x for x, _ in soft_kl], [y for _, y in soft_kl])
        self.kl_plot.setVisible(bool(soft_kl))
        self.table.setRowCount(len(points))
        for row, p in enumerate(points):
            soft_text = "–" if p.soft_agreement is None else f"{p.soft_agreement:.0%}"
            values = (str(p.samples), str(p.teacher_calls), str(p.tokens), f"{p.seconds:.1f}",
                      f"{p.hard_agreement:.0%}", soft_text, f"{p.baseline_agreement:.0%}")
            for column, value in enumerate(values):
                self.table.setItem(row, column, QTableWidgetItem(value))


class AuditLevels(QTableWidget):
    """Every lab workflow against every pattern, coloured by level (UI thread)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 0, parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

    def set_result(self, compare: CompareResult | None) -> None:
        """Show the levels of a compare step (None clears)."""
        workflows = compare.workflows if compare else []
        ids = [v.id for v in workflows[0].patterns] if workflows else []
        self.setColumnCount(1 + len(ids))
        self.setHorizontalHeaderLabels(["Workflow", *ids])
        self.setRowCount(len(workflows))
        for row, workflow in enumerate(workflows):
            self.setItem(row, 0, QTableWidgetItem(f"{workflow.name} ({workflow.generations})"))
            for column, verdict in enumerate(workflow.patterns, 1):
                item = QTableWidgetItem(verdict.level)
                item.setForeground(QBrush(QColor("#ffffff")))
                item.setBackground(QBrush(QColor(LEVEL_COLOURS.get(verdict.level, "#8a8f98"))))
                item.setToolTip(" ".join(verdict.reasons))
                self.setItem(row, column, item)
