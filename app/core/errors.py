"""The errors Stillroom reports to people: each message names the thing and the problem."""

from __future__ import annotations


class StillroomError(Exception):
    """Base class for errors that are the user's to fix; shown without a traceback."""


class ModelFileError(StillroomError):
    """A model file is missing, not a GGUF, truncated, corrupt or too large to load."""


class ModelNotLoadedError(StillroomError):
    """A generation was asked for while no model is loaded."""


class LedgerError(StillroomError):
    """The ledger database cannot be opened or written (locked, read-only, full, corrupt)."""


class NotFoundError(StillroomError):
    """A generation, model or other record that was named does not exist."""


class ContextLengthError(StillroomError):
    """A prompt does not fit in the loaded model's context."""
