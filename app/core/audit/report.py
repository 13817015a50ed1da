"""Audit reports: JSON (the schema in docs/audit.md), Markdown and a self-contained HTML page."""

from __future__ import annotations

import html
import json
from typing import Any

from app.core.audit.run import AuditResult

LEVEL_COLOURS = {"none": "#8a8f98", "low": "#3b82f6", "medium": "#d97706", "high": "#dc2626"}
INTRO = ("Stillroom compares your prompts, request parameters and workflow statistics with the "
         "distillation patterns that model labs and governments described publicly in 2026. A level "
         "says how much a workflow resembles a pattern; it is not a judgement of intent. Many of these "
         "workflows are legitimate, and each pattern names the benign practices that look the same.")


def to_json(result: AuditResult) -> str:
    """The report as indented JSON."""
    return json.dumps(result.as_dict(), indent=2, ensure_ascii=False)


def _signal_rows(signals: dict[str, Any]) -> list[tuple[str, str]]:
    labels = {"volume": "generations", "rate_per_hour": "busiest hour", "active_span_hours": "active span (h)",
              "template_reuse_share": "template reuse", "semantic_diversity": "semantic diversity",
              "reasoning_share": "reasoning requests", "grading_share": "grading prompts",
              "logprob_share": "logprob requests", "max_tokens_1_share": "max_tokens = 1",
              "tool_share": "tool use", "tool_requests": "requests with tools",
              "tool_call_answers": "answers that called a tool", "refusal_share": "refusals"}
    rows = []
    for key, label in labels.items():
        value = signals.get(key)
        if value is None:
            text = "n/a"
        elif key.endswith("_share"):
            text = f"{value * 100:.0f}%"
        elif isinstance(value, float):
            text = f"{value:.2f}"
        else:
            text = str(value)
        rows.append((label, text))
    return rows


def models_text(workflow: dict[str, Any]) -> str:
    """A workflow's models and how each was identified, for the report's signal table."""
    return "; ".join(f"{m['name'] or 'unnamed'} ({m['generations']}, identified by {m['identified_by']}"
                     + ("" if m["verified"] else ", unverified") + ")" for m in workflow.get("models") or []) or "none"


def _backend(data: dict[str, Any]) -> str:
    """' on <back end> (model file sha256 <prefix>)', or nothing when no vectors were computed."""
    if not data.get("embedding_backend"):
        return ""
    digest = data.get("embedding_file_sha256")
    return f" on {data['embedding_backend']}" + (f" (model file sha256 {digest[:12]})" if digest else "")


def to_markdown(result: AuditResult) -> str:
    """The report as Markdown."""
    data = result.as_dict()
    lines = ["# Stillroom audit", "", INTRO, "",
             f"Pattern library {data['library_version']} (sha256 {data['library_hash'][:12]}), "
             f"embeddings {data['embedding_model']}{_backend(data)}.", ""]
    lines += ["| workflow | generations | " + " | ".join(p["id"] for p in data["workflows"][0]["patterns"]) + " |",
              "|---|---:|" + "---|" * len(data["workflows"][0]["patterns"])] if data["workflows"] else []
    for workflow in data["workflows"]:
        lines.append(f"| {workflow['name']} | {workflow['generations']} | "
                     + " | ".join(p["level"] for p in workflow["patterns"]) + " |")
    for workflow in data["workflows"]:
        lines += ["", f"## {workflow['name']}", "", "| signal | value |", "|---|---|"]
        lines += [f"| {label} | {value} |" for label, value in _signal_rows(workflow["signals"])]
        lines += ["| models | " + models_text(workflow).replace("|", "\\|") + " |"]
        for pattern in workflow["patterns"]:
            if pattern["level"] == "none":
                continue
            lines += ["", f"### {pattern['name']}: {pattern['level']}", ""]
            lines += [f"- {reason}" for reason in pattern["reasons"]]
            if pattern["benign_lookalikes"]:
                lines += ["", "Benign look-alikes:"]
                lines += [f"- **{item['name']}**: {item['how_to_tell']}" for item in pattern["benign_lookalikes"]]
        quiet = [p["name"] for p in workflow["patterns"] if p["level"] == "none"]
        if quiet:
            lines += ["", "No resemblance: " + ", ".join(quiet) + "."]
    return "\n".join(lines) + "\n"


def to_html(result: AuditResult) -> str:
    """The report as one self-contained HTML page (no scripts, no external resources)."""
    data = result.as_dict()
    esc = html.escape
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Stillroom audit</title><style>",
             "body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#1f2328}",
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left}",
             ".lvl{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:13px}",
             "h2{margin-top:2em;border-bottom:1px solid #d0d7de}.muted{color:#59636e}</style></head><body>",
             "<h1>Stillroom audit</h1>", f"<p>{esc(INTRO)}</p>",
             f"<p class='muted'>Pattern library {esc(data['library_version'])} (sha256 "
             f"{esc(data['library_hash'][:12])}), embeddings {esc(data['embedding_model'] + _backend(data))}.</p>"]

    def badge(level: str) -> str:
        return f"<span class='lvl' style='background:{LEVEL_COLOURS[level]}'>{esc(level)}</span>"

    if data["workflows"]:
        ids = [p["id"] for p in data["workflows"][0]["patterns"]]
        parts.append("<table><tr><th>workflow</th><th>generations</th>" + "".join(f"<th>{esc(i)}</th>" for i in ids)
                     + "</tr>")
        for workflow in data["workflows"]:
            parts.append(f"<tr><td>{esc(workflow['name'])}</td><td>{workflow['generations']}</td>"
                         + "".join(f"<td>{badge(p['level'])}</td>" for p in workflow["patterns"]) + "</tr>")
        parts.append("</table>")
    for workflow in data["workflows"]:
        parts.append(f"<h2>{esc(workflow['name'])}</h2><table>")
        parts += [f"<tr><td>{esc(label)}</td><td>{esc(value)}</td></tr>"
                  for label, value in _signal_rows(workflow["signals"])]
        parts.append(f"<tr><td>models</td><td>{esc(models_text(workflow))}</td></tr>")
        parts.append("</table>")
        for pattern in workflow["patterns"]:
            if pattern["level"] == "none":
                continue
            parts.append(f"<h3>{esc(pattern['name'])} {badge(pattern['level'])}</h3><ul>")
            parts += [f"<li>{esc(reason)}</li>" for reason in pattern["reasons"]]
            parts.append("</ul>")
            if pattern["benign_lookalikes"]:
                parts.append("<p>Benign look-alikes:</p><ul>")
                parts += [f"<li><b>{esc(item['name'])}</b>: {esc(item['how_to_tell'])}</li>"
                          for item in pattern["benign_lookalikes"]]
                parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)
