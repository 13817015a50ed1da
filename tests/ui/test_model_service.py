"""ModelService.submit: jobs run on the model thread in order, their callbacks on the UI thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QThread

from app.core.errors import StillroomError
from app.core.generation import LogContext
from app.core.models.sampling import GenerationRequest
from app.core.serve.model_host import HostBusyError, Job
from app.core.store import Ledger
from app.core.store.conversations import get_conversation
from app.workers.model_service import ModelService
from app.workers.model_worker import ModelState


@pytest.fixture
def service(qtbot: Any, tmp_path: Path) -> Iterator[ModelService]:
    """A model service with its ledger open and no model loaded."""
    service = ModelService()
    with qtbot.waitSignal(service.ledger_ready, timeout=10_000):
        service.start(tmp_path / "ledger.db")
    yield service
    service.shutdown()


def test_a_job_streams_progress_then_returns_on_the_ui_thread(qtbot: Any, service: ModelService) -> None:
    ui_thread = threading.get_ident()
    seen: list[tuple[str, Any, bool]] = []

    def job(state: ModelState) -> str:
        for step in (1, 2, 3):
            state.progress(step)
        return QThread.currentThread().objectName()

    def record(kind: str) -> Any:
        return lambda value: seen.append((kind, value, threading.get_ident() == ui_thread))

    job_id = service.submit(job, record("done"), record("error"), record("progress"))
    assert job_id > 0
    qtbot.waitUntil(lambda: len(seen) == 4, timeout=5_000)
    assert seen == [("progress", 1, True), ("progress", 2, True), ("progress", 3, True),
                    ("done", "stillroom-model", True)]


def test_jobs_run_in_order_and_an_error_goes_to_its_own_callback(qtbot: Any, service: ModelService) -> None:
    order: list[str] = []
    errors: list[Exception] = []

    def failing(_state: ModelState) -> None:
        order.append("failing")
        raise StillroomError("that did not work")

    service.submit(lambda _state: order.append("first"))
    service.submit(failing, on_done=lambda _r: pytest.fail("a failed job has no result"), on_error=errors.append)
    service.submit(lambda _state: order.append("last"), on_done=lambda _r: order.append("done"))
    qtbot.waitUntil(lambda: order[-1:] == ["done"], timeout=5_000)
    assert order == ["first", "failing", "last", "done"]
    assert [str(error) for error in errors] == ["that did not work"]


def test_what_a_job_writes_is_announced_to_every_listener(qtbot: Any, service: ModelService,
                                                         tmp_path: Path) -> None:
    heard: list[bool] = []
    service.ledger_changed.connect(lambda: heard.append(threading.get_ident() == threading.main_thread().ident))
    with qtbot.waitSignal(service.ledger_changed, timeout=5_000):
        service.rename_conversation("started-in-the-terminal", "A title")
    assert heard == [True]  # a lambda runs on the UI thread too
    reader = Ledger.open(tmp_path / "ledger.db")
    try:
        assert get_conversation(reader.db, "started-in-the-terminal").title == "A title"
    finally:
        reader.close()


def test_a_job_that_needs_the_ledger_before_it_is_open_reports_failed(qtbot: Any, tmp_path: Path) -> None:
    service = ModelService()
    try:
        with qtbot.waitSignal(service.failed, timeout=10_000) as cannot_open:
            service.start(tmp_path)  # a folder: no database can be opened there
        assert cannot_open.args[0] == "The ledger cannot be opened"
        with qtbot.waitSignal(service.failed, timeout=5_000) as not_open:
            service.submit(lambda state: state.require_ledger(), on_done=lambda _r: pytest.fail("no ledger"),
                           on_error=lambda _e: pytest.fail("reported as failed instead"))
        assert not_open.args == ["The ledger is not open", "Stillroom could not open its ledger database."]
    finally:
        service.shutdown()


def test_after_shutdown_nothing_is_queued_and_a_served_job_fails_at_once(service: ModelService) -> None:
    service.shutdown()
    assert service.submit(lambda _state: pytest.fail("ran after shutdown")) == 0
    job = Job(GenerationRequest("completion", prompt="Hello"), LogContext("server"))
    service.serve(job)
    with pytest.raises(HostBusyError):
        list(job.stream())
