"""The Usage view: generations, tokens and time per model, workflow and source."""

from app.ui.usage.usage_view import UsageView

__all__ = ["UsageView"]
