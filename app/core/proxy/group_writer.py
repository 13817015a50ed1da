"""Group commits: one writer thread takes the rows that many request threads hand it and appends
whatever has queued up in one transaction (Ledger.append_many), so the hash chain and the Merkle
tree advance once per batch instead of once per row, and many clients at once cost few commits."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from app.core.store.ledger import Ledger

LOG = logging.getLogger(__name__)
MAX_BATCH = 256  # rows per transaction
MAX_QUEUED = 10_000  # rows waiting; past this, request threads wait for room (back-pressure)
_STOP = object()


class GroupWriter:
    """Appends rows to the ledger at `path` from its own thread (`stillroom-ledger-writer`), in
    batches. submit() returns a Future of the row's id (or the append's exception)."""

    def __init__(self, path: Path) -> None:
        self._ledger = Ledger.open(path)
        self._queue: queue.Queue[Any] = queue.Queue(MAX_QUEUED)
        self.batches = 0
        self.rows = 0
        self._thread = threading.Thread(target=self._run, name="stillroom-ledger-writer", daemon=True)
        self._thread.start()

    def submit(self, row: Mapping[str, Any]) -> Future[int]:
        """Queue one row; the Future resolves once its transaction committed."""
        future: Future[int] = Future()
        if not self._thread.is_alive():
            future.set_exception(RuntimeError("the ledger writer has stopped"))
            return future
        self._queue.put((row, future))
        return future

    def close(self) -> None:
        """Write what is queued, then stop the thread and close the connection."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        self._ledger.close()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if _STOP in batch:
                stopping = True
                batch = [item for item in batch if item is not _STOP]
            if batch:
                self._write(batch)

    def _write(self, batch: list[tuple[Mapping[str, Any], Future[int]]]) -> None:
        try:
            ids = self._ledger.append_many([row for row, _ in batch])
        except Exception as exc:  # noqa: BLE001 - one bad row must not lose the others
            if len(batch) > 1:
                for item in batch:  # each on its own, so only the bad one fails
                    self._write([item])
                return
            LOG.exception("a proxied request could not be logged")
            batch[0][1].set_exception(exc)
            return
        self.batches += 1
        self.rows += len(ids)
        for (_, future), row_id in zip(batch, ids):
            future.set_result(row_id)
