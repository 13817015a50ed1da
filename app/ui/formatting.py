"""Small display helpers shared by the views: local times and byte sizes."""

from __future__ import annotations

from datetime import datetime


def local_timestamp(iso: str | None) -> str:
    """An ISO UTC timestamp as local 'YYYY-MM-DD HH:MM:SS' (the text itself if it does not parse)."""
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def local_time(iso: str) -> str:
    """An ISO UTC timestamp as local 'YYYY-MM-DD HH:MM', or 'HH:MM' for today."""
    try:
        moment = datetime.fromisoformat(iso).astimezone()
    except ValueError:
        return iso
    if moment.date() == datetime.now().astimezone().date():
        return moment.strftime("%H:%M")
    return moment.strftime("%Y-%m-%d %H:%M")


def human_size(size: int | None) -> str:
    """Bytes as '253 MB' / '4.1 GB' (decimal units, as file managers show them)."""
    if not size:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if value >= 100 or unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
