"""Stillroom as a logging proxy in front of an OpenAI-compatible engine."""
