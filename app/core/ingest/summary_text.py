"""An import's summary in words, one line each: what the command line prints and the import
dialog shows after an import, so both say the same thing."""

from __future__ import annotations

from pathlib import Path

from app.core.ingest.formats import FORMAT_NAMES
from app.core.ingest.importer import ImportSummary

SHOWN_ISSUES = 20


def summary_lines(summary: ImportSummary) -> list[str]:
    """The import summary for people, one line each (the first SHOWN_ISSUES malformed records named)."""
    name = Path(summary.file).name
    joined = f" joined with {Path(summary.join_file).name}" if summary.join_file else ""
    ids = f" (rows #{summary.first_id}-#{summary.last_id})" if summary.first_id is not None else ""
    lines = [f"{'Cancelled' if summary.cancelled else 'Imported'} {name}{joined} "
             f"({FORMAT_NAMES.get(summary.format, summary.format)}) into workflow {summary.workflow!r}: "
             f"{summary.rows_written} rows written from {summary.records} records{ids}."]
    if summary.skipped:
        lines.append(f"Skipped {summary.skipped} records already imported from this file.")
    if summary.unmatched_results:
        lines.append(f"{summary.unmatched_results} results have no request with their custom_id in the input file "
                     "(imported without the request).")
    if summary.unmatched_requests:
        lines.append(f"{summary.unmatched_requests} requests of the input file have no result in the output file "
                     "(not imported).")
    if summary.malformed:
        lines.append(f"{summary.malformed} malformed records were not imported:")
        lines.extend(f"  {issue}" for issue in summary.issues[:SHOWN_ISSUES])
        if summary.malformed > SHOWN_ISSUES:
            lines.append(f"  ... and {summary.malformed - SHOWN_ISSUES} more (--json lists up to "
                         f"{len(summary.issues)}).")
    return lines
