"""GuiModelHost: the local server's model host in the desktop app, backed by the model thread.

StillroomServer(model_host=GuiModelHost(service)) serves the model the window already loaded
instead of loading a second copy: each request's Job is queued with ModelService.serve, which runs
it with app.core.serve.model_host.serve_job on the model thread, after (and before) chat turns and
batch runs, in order. The job's events come back through its own queue to the HTTP thread that
submitted it, exactly as with the CLI's ModelHost.

Threads: submit() is called on the server's HTTP threads and queues the job through
ModelService.serve (callable from any thread). start(), stop() and `loaded` are used on the UI
thread (start and stop by StillroomServer.start/stop); `loaded` is also read by HTTP threads.
"""

from __future__ import annotations

import itertools
import threading
import weakref

from PySide6.QtCore import QObject, Signal, Slot

from app.core.errors import StillroomError
from app.core.generation import LogContext
from app.core.models.runner import LoadedModel
from app.core.models.sampling import GenerationRequest
from app.core.serve.model_host import MAX_QUEUED_JOBS, HostBusyError, Job
from app.workers.model_service import ModelService


class GuiModelHost(QObject):
    """ModelHost's interface (start, stop, submit, loaded) over the window's model thread.

    Emits served() on the UI thread after each request it queued has run on the model thread.
    """

    served = Signal()

    def __init__(self, service: ModelService, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._loaded: LoadedModel | None = None
        self._lock = threading.Lock()
        self._jobs: weakref.WeakValueDictionary[int, Job] = weakref.WeakValueDictionary()  # Job is unhashable
        self._ids = itertools.count()
        self._pending = 0
        self._running = False
        service.model_loaded.connect(self._on_loaded)

    @property
    def loaded(self) -> LoadedModel:
        """The model being served (the one loaded in the window when the server started, or since)."""
        assert self._loaded is not None
        return self._loaded

    def start(self) -> LoadedModel:
        """Serve the window's loaded model; raises StillroomError when none is loaded (UI thread)."""
        if self._service.loaded is None:
            raise StillroomError("no model is loaded; load one in Models before starting the server")
        self._loaded = self._service.loaded
        self._running = True
        return self._loaded

    def submit(self, request: GenerationRequest, context: LogContext, model_sha256: str | None = None) -> Job:
        """Queue a generation on the model thread (any thread) for the registered model
        `model_sha256` (None: the loaded one; another is loaded in its place first); its events
        arrive through the Job."""
        with self._lock:
            if not self._running:
                raise HostBusyError("the server is shutting down")
            if self._pending >= MAX_QUEUED_JOBS:
                raise HostBusyError(f"{MAX_QUEUED_JOBS} requests are already waiting for the model; "
                                    "try again later")
            self._pending += 1
            job = Job(request, context, model=model_sha256)
            self._jobs[next(self._ids)] = job
        self._service.serve(job, self._on_job_done)
        return job

    def stop(self) -> None:
        """Refuse new requests and cancel those queued or running: the running generation stops
        within one token and is logged as cancelled; the model stays loaded in the window."""
        with self._lock:
            self._running = False
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel.cancel()

    def _on_job_done(self, _result: None) -> None:
        with self._lock:
            self._pending = max(0, self._pending - 1)
        self.served.emit()

    @Slot(object)
    def _on_loaded(self, loaded: LoadedModel) -> None:
        if self._running:
            self._loaded = loaded
