"""The Provenance view end to end on a small real ledger: choose a file whose fields must be named
by hand, see the shape and first rows, match (progress on a worker), review the traced shares,
untraced and edited rows, models and screening, export the untraced rows, declare the license and
description, write the three files and read the card; and cancel a match."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.core.provenance import TRACED_EXACT, TRACED_NEAR, UNTRACED, verify_statement
from app.core.store import Ledger
from app.ui.dialogs import ERROR_DIALOG
from app.ui.provenance import ProvenanceView
from app.ui.provenance.provenance_view import TAB_CARD, TAB_REVIEW
from tests.core.records import record

JOB_TIMEOUT_MS = 240_000
ANSWERS = [
    "Tides are caused mainly by the Moon's gravity; spring tides come when the Sun lines up with it.",
    "Sourdough rises because wild yeast and lactic acid bacteria ferment the dough over many hours.",
    "Binary search halves the interval at each step, so it needs sorted input and logarithmic time.",
    "Lichens are partnerships of a fungus with an alga or cyanobacterium, and grow very slowly.",
    "A haiku has three lines of five, seven and five syllables and often names a season.",
]


def make_files(tmp_path: Path, extra_rows: int = 0) -> tuple[Path, Path]:
    ledger = Ledger.open(tmp_path / "ledger.db")
    ledger.append_many([record(i, prompt=f"Explain topic {i}.", response=text, workflow="explainers")
                        for i, text in enumerate(ANSWERS)])
    ledger.close()
    rows = [{"ask": f"Explain topic {i}.", "reply": text} for i, text in enumerate(ANSWERS[:4])]
    rows[2]["reply"] = rows[2]["reply"].upper()  # edited after generation
    rows.append({"ask": "Where do owls nest?", "reply": "Owls nest in tree hollows, barns and old buildings."})
    rows += [{"ask": f"More {i}", "reply": f"Filler answer number {i} that nobody generated here."}
             for i in range(extra_rows)]
    dataset = tmp_path / "release.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken line\n", encoding="utf-8")
    return dataset, tmp_path / "ledger.db"


def close_boxes(view: ProvenanceView) -> list[str]:
    texts = []
    for box in view.findChildren(QMessageBox):
        texts.append(box.informativeText())
        box.close()
    return texts


def cell(table: Any, row: int, column: int) -> str:
    return table.item(row, column).text()


def test_provenance_walkthrough(qtbot: Any, tmp_path: Path) -> None:
    dataset, ledger = make_files(tmp_path)
    view = ProvenanceView(ledger, key_dir=tmp_path / "keys")
    qtbot.addWidget(view)
    view.show()
    written: list[Any] = []
    view.written.connect(written.append)

    # 1. The fields have names Stillroom does not know: the columns are offered, named by hand.
    view.choose_dataset(dataset)
    qtbot.waitUntil(lambda: not view.busy and view.apply_fields_button.isEnabled(), timeout=10_000)
    assert "its first record has the fields: ask, reply" in view.shape_label.text()
    assert not view.match_button.isEnabled() and not close_boxes(view)
    box = view.field_boxes["prompt"]
    assert [box.itemText(i) for i in range(box.count())] == ["(detected)", "ask", "reply"]
    view.field_boxes["prompt"].setCurrentText("ask")
    view.field_boxes["response"].setCurrentText("reply")
    qtbot.mouseClick(view.apply_fields_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.busy and view.detected is not None, timeout=10_000)
    assert "fields named by hand" in view.shape_label.text()
    assert [view.field_boxes["prompt"].currentText(), view.field_boxes["response"].currentText()] == ["ask", "reply"]
    assert view.preview.rowCount() == 6
    assert cell(view.preview, 0, 1) == "Explain topic 0." and cell(view.preview, 5, 1) == "malformed"
    assert "line 6: invalid JSON" in cell(view.preview, 5, 2)
    assert view.detected.shape.fields == {"prompt": "ask", "response": "reply"}
    # A file that cannot be read at all is an error dialog naming the problem.
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    view.choose_dataset(empty)
    qtbot.waitUntil(lambda: not view.busy and view.findChild(QMessageBox, ERROR_DIALOG) is not None, timeout=10_000)
    assert "the file is empty" in close_boxes(view)[0] and not view.match_button.isEnabled()
    view.choose_dataset(dataset, {"prompt": "ask", "response": "reply"})
    qtbot.waitUntil(lambda: not view.busy and view.detected is not None, timeout=10_000)

    # 2. Match, then the review is prepared on its own (untraced text, models, screening).
    qtbot.mouseClick(view.match_button, Qt.MouseButton.LeftButton)
    assert view.tabs.currentIndex() == TAB_REVIEW and view.strip.bar.isVisible()
    qtbot.waitUntil(lambda: view.predicate is not None and not view.busy, timeout=JOB_TIMEOUT_MS)
    report = view.report
    assert report is not None
    assert report.counts == {TRACED_EXACT: 3, TRACED_NEAR: 1, UNTRACED: 1} and report.malformed == 1
    assert "5 rows" in view.shares_label.text() and "traced exactly: 3 (60.0%)" in view.shares_label.text()
    assert (view.untraced_table.rowCount(), cell(view.untraced_table, 0, 1)) == (1, "Where do owls nest?")
    assert [cell(view.near_table, 0, c) for c in range(3)] == ["2", "3", "1.00"]
    assert cell(view.models_table, 0, 0) == "Test Model" and cell(view.models_table, 0, 2) == "4"
    assert view.screening_label.text().startswith("Screening (pattern library")
    assert "explainers" in view.screening_label.text()
    assert view.next_button.isEnabled() and not close_boxes(view)

    out = tmp_path / "untraced.jsonl"
    view.export_untraced(out)
    qtbot.waitUntil(lambda: not view.busy, timeout=10_000)
    assert [json.loads(line)["prompt"] for line in out.read_text(encoding="utf-8").splitlines()] == ["Where do owls nest?"]
    assert view.status.text() == "Wrote 1 untraced rows."

    # 3. Declare and write; 4. the card.
    qtbot.mouseClick(view.next_button, Qt.MouseButton.LeftButton)
    assert view.name_edit.text() == "release" and view.out_edit.text() == str(tmp_path)
    view.license_box.setCurrentText("cc-by-4.0")
    view.description_edit.setPlainText("Five short explanations written with a local model.")
    view.intended_edit.setPlainText("Teaching examples.")
    out_dir = tmp_path / "published"
    view.out_edit.setText(str(out_dir))
    qtbot.mouseClick(view.write_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.paths is not None and not view.busy, timeout=JOB_TIMEOUT_MS)
    assert not close_boxes(view)
    assert {p.name for p in out_dir.iterdir()} >= {"README.md", "croissant.json", "provenance.dsse.json"}
    assert written and written[0]["card"] == out_dir / "README.md"
    assert view.tabs.currentIndex() == TAB_CARD
    shown = view.card.toPlainText()
    assert "Data Collection and Processing" in shown and "Five short explanations" in shown
    assert "license: cc-by-4.0" in (out_dir / "README.md").read_text(encoding="utf-8")
    result = verify_statement(out_dir / "provenance.dsse.json", dataset, ledger_path=ledger)
    assert result.ok, result.reasons


def test_cancel_a_match(qtbot: Any, tmp_path: Path) -> None:
    dataset, ledger = make_files(tmp_path, extra_rows=60_000)
    view = ProvenanceView(ledger, key_dir=tmp_path / "keys")
    qtbot.addWidget(view)
    view.choose_dataset(dataset, {"prompt": "ask", "response": "reply"})
    qtbot.waitUntil(lambda: not view.busy and view.detected is not None, timeout=10_000)
    view.start_match()
    qtbot.waitUntil(lambda: view.strip.bar.maximum() == 1000, timeout=20_000)  # progress with a total
    qtbot.mouseClick(view.strip.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.busy, timeout=20_000)
    assert view.report is None and view.status.text() == "Matching cancelled; nothing was reported."
    assert not close_boxes(view)


def test_the_window_has_the_provenance_view(qtbot: Any, window: Any) -> None:
    window.show_view("provenance")
    view = window.stack.currentWidget()
    assert isinstance(view, ProvenanceView) and window.current_view() == "provenance"
    assert "Provenance" in [window.nav.item(r).text() for r in range(window.nav.count())]
    assert view._ledger_path == window.ledger_path


def test_a_dataset_with_nothing_traced_is_signed_only_on_purpose(qtbot: Any, tmp_path: Path) -> None:
    _, ledger = make_files(tmp_path)
    dataset = tmp_path / "foreign.jsonl"
    dataset.write_text("".join(json.dumps({"prompt": f"Where do owls nest {i}?", "response": f"In hollow {i}."}) + "\n"
                               for i in range(3)), encoding="utf-8")
    view = ProvenanceView(ledger, key_dir=tmp_path / "keys")
    qtbot.addWidget(view)
    view.screen_check.setChecked(False)
    view.choose_dataset(dataset)
    qtbot.waitUntil(lambda: not view.busy and view.detected is not None, timeout=10_000)
    view.start_match()
    qtbot.waitUntil(lambda: view.predicate is not None and not view.busy, timeout=JOB_TIMEOUT_MS)
    assert view.report is not None and view.report.counts.get(UNTRACED) == 3
    assert "Warning: foreign.jsonl: none of its 3 rows is in the ledger" in view.shares_label.text()
    assert not view.untraced_warning.isHidden() and not view.allow_untraced_check.isHidden()
    assert not view.allow_untraced_check.isChecked()
    out_dir = tmp_path / "published"
    view.out_edit.setText(str(out_dir))
    qtbot.mouseClick(view.write_button, Qt.MouseButton.LeftButton)
    assert not view.busy and view.paths is None
    assert "none of its 3 rows is in the ledger" in close_boxes(view)[0]
    assert not (out_dir / "provenance.dsse.json").exists()
    view.allow_untraced_check.setChecked(True)  # the explicit override
    qtbot.mouseClick(view.write_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.paths is not None and not view.busy, timeout=JOB_TIMEOUT_MS)
    assert not close_boxes(view) and (out_dir / "provenance.dsse.json").exists()
    result = verify_statement(out_dir / "provenance.dsse.json", dataset, ledger_path=ledger)
    assert not result.ok and any("traces no generation" in reason for reason in result.reasons)
    # A dataset that traces something clears the warning and the override.
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"prompt": "Explain topic 0.", "response": ANSWERS[0]}) + "\n", encoding="utf-8")
    view.choose_dataset(good)
    qtbot.waitUntil(lambda: not view.busy and view.detected is not None, timeout=10_000)
    view.start_match()
    qtbot.waitUntil(lambda: view.predicate is not None and not view.busy
                    and view.report is not None and view.report.dataset_name == "good.jsonl", timeout=JOB_TIMEOUT_MS)
    assert view.untraced_warning.isHidden() and not view.allow_untraced_check.isChecked()
