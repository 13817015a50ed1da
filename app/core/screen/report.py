"""Screen reports: JSON (docs/screen.md), Markdown and a self-contained HTML page; and the
per-row scores as JSON Lines or CSV.

Everything quoted from the file is escaped for where it goes: HTML-escaped in the page, and in
Markdown with its control characters shown (app.core.safetext) and its table pipes escaped.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Iterator
from typing import Any

from app.core.audit.report import LEVEL_COLOURS, _signal_rows
from app.core.safetext import escape
from app.core.screen.run import ScreenResult

INTRO = ("Stillroom screened this file without adding it to the ledger: its prompts were compared with the "
         "distillation patterns described publicly in 2026, as the audit does for a workflow, and its responses "
         "with the styles of the model families a local style model was trained on. Resemblance is not intent, "
         "and a style model can only name families it has examples of.")
ROW_FORMATS = ("jsonl", "csv")


def to_json(result: ScreenResult) -> str:
    """The report as indented JSON."""
    return json.dumps(result.as_dict(), indent=2, ensure_ascii=False)


def _md(value: object) -> str:
    return escape(value).replace("|", "\\|")


def _attribution_lines(data: dict[str, Any]) -> list[str]:
    lines = ["## Who wrote the responses?", "", f"**{_md(data['verdict'])}**: {_md(data['reason'])}.", ""]
    model = data.get("style_model") or {}
    if model:
        training = model["training_set"]
        how = (f"likelihood under each family's own model ({data['likelihood_rows']} sampled responses scored)"
               if data.get("method") == "likelihood" else "style")
        lines += [f"Attributed by {how}; trained on {_md(training['name'])} ({training['rows']} texts, sha256 "
                  f"{training['sha256'][:12]}); held-out accuracy {model['heldout_accuracy'] * 100:.1f}%.", "",
                  "| family | share of responses | mean probability | held-out AUC | held-out accuracy | examples |",
                  "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {_md(f['family'])} | {f['share'] * 100:.1f}% | {f['mean_probability']:.2f} | {f['heldout_auc']:.2f}"
                  f"{'' if f['has_signal'] else ' (no signal)'} | {f['heldout_accuracy'] * 100:.1f}% | "
                  f"{f['training_examples']} |" for f in data["families"]]
        lines += [f"| unknown | {data['unknown_share'] * 100:.1f}% | | | | |"]
    return lines


def to_markdown(result: ScreenResult) -> str:
    """The report as Markdown."""
    data = result.as_dict()
    lines = [f"# Stillroom screen: {_md(data['file'])}", "", INTRO, "",
             f"{data['rows_screened']:,} rows screened ({_md(data['shape'])}; sha256 {data['sha256'][:12]}); "
             f"{data['problems']} unreadable. Pattern library {_md(data['library_version'])}, embeddings "
             f"{_md(data['embedding_model'])}." + (" The file is longer: only its first rows were screened."
                                                    if data["truncated"] else ""), "",
             "## Prompts", "", "| pattern | level | share of rows |", "|---|---|---:|"]
    lines += [f"| {_md(p['name'])} | {p['level']} | {p['hit_share'] * 100:.1f}% |" for p in data["patterns"]]
    lines += ["", "| signal | value |", "|---|---|"]
    lines += [f"| {label} | {value} |" for label, value in _signal_rows(data["signals"])]
    for pattern in data["patterns"]:
        if pattern["level"] == "none":
            continue
        lines += ["", f"### {_md(pattern['name'])}: {pattern['level']}", ""]
        lines += [f"- {_md(reason)}" for reason in pattern["reasons"]]
        if pattern["example_rows"]:
            lines += ["", "Example rows:"]
            lines += [f"- row {e['row']}: {_md(e['prompt'])}" for e in pattern["example_rows"]]
        if pattern["benign_lookalikes"]:
            lines += ["", "Benign look-alikes:"]
            lines += [f"- **{_md(item['name'])}**: {_md(item['how_to_tell'])}" for item in pattern["benign_lookalikes"]]
    lines += [""] + _attribution_lines(data["attribution"])
    return "\n".join(lines) + "\n"


def to_html(result: ScreenResult) -> str:
    """The report as one self-contained HTML page (no scripts, no external resources)."""
    data = result.as_dict()
    esc = html.escape
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Stillroom screen</title><style>",
             "body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#1f2328}",
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left}",
             ".lvl{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:13px}",
             ".muted{color:#59636e}</style></head><body>",
             f"<h1>Stillroom screen: {esc(data['file'])}</h1><p>{esc(INTRO)}</p>",
             f"<p class='muted'>{data['rows_screened']:,} rows screened ({esc(data['shape'])}; sha256 "
             f"{esc(data['sha256'][:12])}); {data['problems']} unreadable.</p><h2>Prompts</h2><table>"
             "<tr><th>pattern</th><th>level</th><th>share of rows</th></tr>"]
    for p in data["patterns"]:
        parts.append(f"<tr><td>{esc(p['name'])}</td><td><span class='lvl' style='background:{LEVEL_COLOURS[p['level']]}'>"
                     f"{esc(p['level'])}</span></td><td>{p['hit_share'] * 100:.1f}%</td></tr>")
    parts.append("</table>")
    for p in data["patterns"]:
        if p["level"] == "none":
            continue
        parts.append(f"<h3>{esc(p['name'])}: {esc(p['level'])}</h3><ul>")
        parts += [f"<li>{esc(reason)}</li>" for reason in p["reasons"]]
        parts += [f"<li>row {e['row']}: {esc(e['prompt'])}</li>" for e in p["example_rows"]]
        parts.append("</ul>")
    attribution = data["attribution"]
    parts.append(f"<h2>Who wrote the responses?</h2><p><b>{esc(attribution['verdict'])}</b>: "
                 f"{esc(attribution['reason'])}.</p><table><tr><th>family</th><th>share</th><th>held-out AUC</th>"
                 "<th>held-out accuracy</th></tr>")
    parts += [f"<tr><td>{esc(f['family'])}</td><td>{f['share'] * 100:.1f}%</td><td>{f['heldout_auc']:.2f}</td>"
              f"<td>{f['heldout_accuracy'] * 100:.1f}%</td></tr>" for f in attribution["families"]]
    parts.append(f"<tr><td>unknown</td><td>{attribution['unknown_share'] * 100:.1f}%</td><td></td><td></td></tr>"
                 "</table></body></html>")
    return "\n".join(parts)


def row_records(result: ScreenResult, flagged_only: bool = False) -> Iterator[dict[str, Any]]:
    """One record per screened row: its number in the file, top pattern and score, every pattern's
    score, the attribution; `flagged_only` keeps rows whose top score is a hit."""
    from app.core.audit.scorer import HIT_THRESHOLD

    scored = set(result.likelihood_positions.tolist())
    for i, row in enumerate(result.rows):
        scores = result.scores[i]
        top = int(scores.argmax()) if len(scores) else 0
        if flagged_only and (not len(scores) or scores[top] < HIT_THRESHOLD):
            continue
        record: dict[str, Any] = {"row": int(row) + 1, "prompt": result.excerpts[i],
                                  "top_pattern": result.pattern_ids[top], "top_score": round(float(scores[top]), 4)}
        record.update({pid: round(float(scores[j]), 4) for j, pid in enumerate(result.pattern_ids)})
        record["attribution"] = result.attributions[i] if result.attributions else "unknown"
        record["attributed_by"] = ("likelihood" if i in scored else "style") if result.attributions else ""
        yield record


def rows_text(result: ScreenResult, fmt: str, flagged_only: bool = False) -> str:
    """The per-row records as JSON Lines or CSV."""
    records = list(row_records(result, flagged_only))
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    out = io.StringIO()
    columns = ["row", "prompt", "top_pattern", "top_score", *result.pattern_ids, "attribution", "attributed_by"]
    writer = csv.DictWriter(out, columns)
    writer.writeheader()
    for record in records:  # a cell a spreadsheet would run as a formula is quoted as text
        record["prompt"] = ("'" + record["prompt"]) if record["prompt"][:1] in ("=", "+", "-", "@") else record["prompt"]
        writer.writerow(record)
    return out.getvalue()
