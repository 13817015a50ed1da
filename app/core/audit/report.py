"""Audit reports: JSON (the schema in docs/audit.md), Markdown and a self-contained HTML page."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from app.core.audit.levels import LEVELS
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
              "tool_call_answers": "answers that called a tool", "refusal_share": "refusals",
              "grid_cells": "grid cells seen", "grid_size": "grid cells in all", "grid_coverage": "grid coverage",
              "template_family_share": "prompts in the grid's family"}
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


RAISED = ("high", "medium")


def _ordered(patterns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Patterns from the highest level down (library order within a level)."""
    return sorted(patterns, key=lambda p: -LEVELS.index(p["level"]))


def raised(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(workflow name, pattern) for every pattern raised to medium or high, highest first."""
    found = [(w["name"], p) for w in data["workflows"] for p in w["patterns"] if p["level"] in RAISED]
    return sorted(found, key=lambda item: -LEVELS.index(item[1]["level"]))


def _md(text: object) -> str:
    """Outside text made inert in a Markdown table or line (no markup, no pipes, no line breaks)."""
    flat = " ".join(str(text).split())
    return re.sub(r"([\\`*_{}\[\]<>()#+!|~])", r"\\\1", flat)


def to_markdown(result: AuditResult) -> str:
    """The report as Markdown: what is raised and why first, then every workflow x pattern, then details."""
    data = result.as_dict()
    lines = ["# Stillroom audit", "", INTRO, "",
             f"Pattern library {data['library_version']} (sha256 {data['library_hash'][:12]}), "
             f"embeddings {data['embedding_model']}{_backend(data)}.", "", "## What is raised", ""]
    top = raised(data)
    lines += [f"- **{_md(name)}**, {pattern['name']}: **{pattern['level']}**. {_md(pattern['reasons'][0])}"
              for name, pattern in top] or ["Nothing is raised above low."]
    if data["workflows"]:
        patterns = data["workflows"][0]["patterns"]
        lines += ["", "| workflow | generations | " + " | ".join(p["short_name"] for p in patterns) + " |",
                  "|---|---:|" + "---|" * len(patterns)]
        lines += [f"| {_md(w['name'])} | {w['generations']} | " + " | ".join(p["level"] for p in w["patterns"]) + " |"
                  for w in data["workflows"]]
        lines += ["", "Columns: " + "; ".join(f"{p['short_name']} = {p['name']}" for p in patterns) + "."]
    for workflow in data["workflows"]:
        lines += ["", f"## {_md(workflow['name'])}", ""]
        lines += [f"- Sub-stream: {_md(group['summary'])}." for group in workflow.get("substreams", [])]
        for pattern in _ordered(workflow["patterns"]):
            if pattern["level"] == "none":
                continue
            lines += ["", f"### {pattern['name']}: {pattern['level']}", ""]
            lines += [f"- {_md(reason)}" for reason in pattern["reasons"]]
            if pattern["benign_lookalikes"]:
                lines += ["", "Benign look-alikes:"]
                lines += [f"- **{item['name']}**: {item['how_to_tell']}" for item in pattern["benign_lookalikes"]]
        quiet = [p["name"] for p in workflow["patterns"] if p["level"] == "none"]
        if quiet:
            lines += ["", "No resemblance: " + ", ".join(quiet) + "."]
        lines += ["", "| signal | value |", "|---|---|"]
        lines += [f"| {label} | {value} |" for label, value in _signal_rows(workflow["signals"])]
        lines += ["| models | " + _md(models_text(workflow)) + " |"]
    return "\n".join(lines) + "\n"


STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:1200px;margin:1.5em auto;padding:0 16px;color:#1f2328}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d0d7de;padding:4px 6px;text-align:left;"
    "vertical-align:top;overflow-wrap:anywhere}"
    "table.grid{width:100%;table-layout:fixed}table.grid th{font-size:13px;font-weight:600}"
    "table.grid td.name{width:auto}table.grid col.lvl{width:7.6%}table.grid col.num{width:5%}"
    ".lvl{display:inline-block;padding:0 6px;border-radius:9px;color:#fff;font-size:12px;line-height:18px}"
    "h2{margin-top:2em;border-bottom:1px solid #d0d7de}.muted{color:#59636e}"
    ".raised li{margin:.4em 0}.group{background:#fff8e6;border-left:3px solid #d97706;padding:4px 8px}")


def to_html(result: AuditResult) -> str:
    """The report as one self-contained HTML page (no scripts, no external resources): what is raised
    and why first, then a workflow x pattern table that fits 1280 pixels with every pattern, then details."""
    data = result.as_dict()
    esc = html.escape
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             "<meta name='viewport' content='width=device-width'><title>Stillroom audit</title>",
             f"<style>{STYLE}</style></head><body>", "<h1>Stillroom audit</h1>", f"<p>{esc(INTRO)}</p>",
             f"<p class='muted'>Pattern library {esc(data['library_version'])} (sha256 "
             f"{esc(data['library_hash'][:12])}), embeddings {esc(data['embedding_model'] + _backend(data))}.</p>",
             "<h2 id='raised'>What is raised</h2>"]

    def badge(level: str) -> str:
        return f"<span class='lvl' style='background:{LEVEL_COLOURS[level]}'>{esc(level)}</span>"

    top = raised(data)
    if top:
        parts.append("<ul class='raised'>")
        parts += [f"<li><b>{esc(name)}</b>, {esc(pattern['name'])} {badge(pattern['level'])}: "
                  f"{esc(pattern['reasons'][0])}</li>" for name, pattern in top]
        parts.append("</ul>")
    else:
        parts.append("<p>Nothing is raised above low.</p>")
    if data["workflows"]:
        patterns = data["workflows"][0]["patterns"]
        parts.append("<table class='grid'><colgroup><col><col class='num'>"
                     + "<col class='lvl'>" * len(patterns) + "</colgroup><tr><th>workflow</th><th>gen.</th>"
                     + "".join(f"<th title='{esc(p['name'])}'>{esc(p['short_name'])}</th>" for p in patterns)
                     + "</tr>")
        for workflow in data["workflows"]:
            parts.append(f"<tr><td class='name'>{esc(workflow['name'])}</td><td>{workflow['generations']}</td>"
                         + "".join(f"<td>{badge(p['level'])}</td>" for p in workflow["patterns"]) + "</tr>")
        parts.append("</table>")
    for workflow in data["workflows"]:
        parts.append(f"<h2>{esc(workflow['name'])}</h2>")
        parts += [f"<p class='group'>Sub-stream: {esc(group['summary'])}.</p>"
                  for group in workflow.get("substreams", [])]
        for pattern in _ordered(workflow["patterns"]):
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
        quiet = [p["name"] for p in workflow["patterns"] if p["level"] == "none"]
        if quiet:
            parts.append(f"<p class='muted'>No resemblance: {esc(', '.join(quiet))}.</p>")
        parts.append("<table>")
        parts += [f"<tr><td>{esc(label)}</td><td>{esc(value)}</td></tr>"
                  for label, value in _signal_rows(workflow["signals"])]
        parts.append(f"<tr><td>models</td><td>{esc(models_text(workflow))}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
