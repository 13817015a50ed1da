"""The Screen view: screen any dataset file (prompts on the audit map, who wrote the responses)."""

from app.ui.screen.screen_view import ScreenView

__all__ = ["ScreenView"]
