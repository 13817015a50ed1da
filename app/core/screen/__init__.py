"""Screening any dataset file: its prompts against the pattern library, and which model family's
style its responses carry (a locally trained style model)."""
