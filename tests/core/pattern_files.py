"""A throwaway pattern for the tests that show a new pattern is one new file: a copy of the
library with `tide_recital.yaml` added and listed, nothing else changed. Written for these tests:
not a real distillation pattern, and none of its prompts come from the library or the public
evaluation sets."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from app.core.audit.patterns import DEFAULT_LIBRARY_DIR, LIBRARY_FILE

NEW_ID = "tide_recital"
NEW_SHORT_NAME = "Tides"
HARBOURS = ["Brest", "Dover", "Saint-Malo", "Cuxhaven", "Den Helder", "Esbjerg", "Bergen", "Cork", "Oban",
            "Falmouth", "Lerwick", "Vigo", "Cadiz", "Hull", "Whitby", "Galway", "Aberdeen", "Ostend", "Calais",
            "Le Havre", "Swansea", "Bristol", "Plymouth", "Stornoway", "Dunkirk", "Harwich", "Tromso", "Arendal"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July"]
# Prompts of the pattern's own kind, for a workflow that should resemble it (other harbours' months).
WORKFLOW_PROMPTS = [f"List the complete tide table for {harbour} in {MONTHS[(i + 3) % len(MONTHS)]}: "
                    f"every high and low water, with its time and height in metres."
                    for i, harbour in enumerate(HARBOURS)]


def _pattern() -> dict[str, object]:
    return {
        "id": NEW_ID,
        "name": "Tide-table recitation",
        "short_name": NEW_SHORT_NAME,
        "version": 1,
        "summary": "Asks for whole tide tables, every high and low water, harbour after harbour.",
        "definition": "Requests that have a model recite complete tide tables for one harbour after another.",
        "why_flagged": "It is not flagged by anyone: it exists to show that a pattern is one file.",
        "sources": [{"title": "A pattern written for Stillroom's tests", "publisher": "Stillroom", "date": "2026"}],
        "prompt_cues": [{"id": "tide_table", "description": "Names a tide table.",
                         "regex": r"\btide\s+tables?\b", "weight": 0.5}],
        "param_cues": [],
        "workflow_cues": [{"id": "many_tables", "description": "Many requests.", "signal": "volume",
                           "op": "gte", "value": 20, "weight": 0.3}],
        "benign_lookalikes": [{"name": "Planning a sail", "description": "A sailor asks about one day's tides.",
                               "how_to_tell": "One harbour, one day, a question rather than a table."}],
        "exemplars": [f"Recite the full tide table for {harbour} for {MONTHS[i % len(MONTHS)]}, listing each "
                      f"high water and low water with times and heights." for i, harbour in enumerate(HARBOURS[:25])],
        "benign_exemplars": [f"Why is the tidal range at {harbour} so different from elsewhere? I sail there "
                             f"next {MONTHS[i % len(MONTHS)]} and wonder about the moon's part in it."
                             for i, harbour in enumerate(HARBOURS[:25])],
    }


def library_with_new_pattern(folder: Path, **changes: object) -> Path:
    """Copy the shipped library into `folder` and add the throwaway pattern as one file (listed
    last), with `changes` to its keys."""
    root = folder / "patterns"
    shutil.copytree(DEFAULT_LIBRARY_DIR, root)
    pattern = {**_pattern(), **changes}
    (root / f"{NEW_ID}.yaml").write_text(yaml.safe_dump(pattern, sort_keys=False), encoding="utf-8")
    index = yaml.safe_load((root / LIBRARY_FILE).read_text(encoding="utf-8"))
    index["patterns"].append(NEW_ID)
    (root / LIBRARY_FILE).write_text(yaml.safe_dump(index, sort_keys=False), encoding="utf-8")
    return root
