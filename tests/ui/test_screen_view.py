"""The Screen view on real embeddings and a real style model: choose a file, the report and the
map layer (the file's rows over the library's regions) appear, the attribution line names the
family with the model's accuracy, and flagged rows export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.audit.embeddings import Encoder
from app.core.audit.patterns import PatternLibrary, load_library
from app.core.screen.attribution import TrainingSet, train_style_model
from app.core.screen.model_file import save_model
from app.core.store import Ledger
from app.ui.screen import ScreenView
from tests.core.test_audit import JUDGE, ORDINARY
from tests.core.test_screen import _styled

SCREEN_TIMEOUT_MS = 300_000


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder()


@pytest.fixture(scope="module")
def library() -> PatternLibrary:
    return load_library()


@pytest.fixture
def view(qtbot: Any, tmp_path: Path, encoder: Encoder, library: PatternLibrary) -> Iterator[ScreenView]:
    Ledger.open(tmp_path / "ledger.db").close()
    texts, labels = _styled(60, 3)
    save_model(train_style_model(texts, labels, TrainingSet("styled.jsonl", "0" * 64, len(texts))),
               tmp_path / "style-model.npz")
    widget = ScreenView(tmp_path / "ledger.db", encoder=encoder, library=library, model_path=tmp_path / "style-model.npz")
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    widget.show()
    yield widget
    widget.shutdown()


def test_screening_a_file_shows_the_report_the_map_layer_and_the_attribution(qtbot: Any, view: ScreenView,
                                                                            tmp_path: Path) -> None:
    texts, _ = _styled(40, 9)
    markdowny = texts[::2]
    rows = [{"prompt": JUDGE.format(q=q, a="Yes."), "response": markdowny[i % len(markdowny)]}
            for i, q in enumerate(ORDINARY)]
    path = tmp_path / "harvest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with qtbot.waitSignal(view.screened, timeout=SCREEN_TIMEOUT_MS) as signal:
        view.path_edit.setText(str(path))
        view.screen_button.click()  # widget -> model
    outcome = signal.args[0]
    assert outcome.result.screened == len(ORDINARY)
    # model -> widget: the map holds the file's rows over the library's regions
    assert view.map.data is outcome.map and len(outcome.map.points) == len(ORDINARY)
    assert len(outcome.map.exemplar_points) > 100 and set(outcome.map.workflows) == {"harvest.jsonl"}
    assert "Autograding" in view.report.toPlainText()
    assert "markdowny" in view.attribution_label.text() and "held-out accuracy" in view.attribution_label.text()
    assert view.export_button.isEnabled()
    count = view.export_flagged(tmp_path / "flagged.jsonl")
    exported = (tmp_path / "flagged.jsonl").read_text(encoding="utf-8").splitlines()
    assert count == len(exported) > 0 and json.loads(exported[0])["top_pattern"] == "autograding"


def test_training_from_a_labelled_file_runs_on_a_worker_and_is_saved(qtbot: Any, view: ScreenView,
                                                                    tmp_path: Path) -> None:
    from app.core.screen.model_file import load_model

    texts, labels = _styled(50, 11)
    labelled = [{"prompt": "Tell me something.", "response": t, "author": "teacher-" + l} for t, l in zip(texts, labels)]
    path = tmp_path / "teachers.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in labelled), encoding="utf-8")
    view.path_edit.setText(str(path))
    view.label_edit.setText("nope")
    view.train_file_button.click()
    qtbot.waitUntil(lambda: "no field 'nope'" in view.strip.label.text(), timeout=SCREEN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not view.jobs.busy, timeout=SCREEN_TIMEOUT_MS)
    view.label_edit.setText("author")
    with qtbot.waitSignal(view.trained, timeout=SCREEN_TIMEOUT_MS) as signal:
        view.train_file_button.click()  # widget -> worker -> model file
    model = signal.args[0]
    assert model.families == ["teacher-markdowny", "teacher-plain"] and model.training_set.name == "teachers.jsonl"
    saved = load_model(tmp_path / "style-model.npz")
    assert saved.families == model.families and saved.training_set.sha256 == model.training_set.sha256
    assert "teachers.jsonl" in view.attribution_label.text() and "held-out accuracy" in view.attribution_label.text()
