"""Stillroom: a workbench for local language models with a tamper-evident ledger."""

__version__ = "0.1.0"
