"""The import's own errors: a file that cannot be imported at all, and a record that is malformed."""

from __future__ import annotations

from app.core.errors import StillroomError


class ImportFileError(StillroomError):
    """The file cannot be imported at all (missing, unreadable, empty); nothing was written."""


class ImportFormatError(ImportFileError):
    """The file is not in any format Stillroom can import, or not in the one asked for; nothing
    was written. The message names the file and what was expected."""


class RecordError(ValueError):
    """One record is malformed (missing fields, wrong types); it is counted and skipped, never fatal."""
