"""Synthetic-data batch runs: a prompt template x inputs x samples -> logged generations, resumable."""
