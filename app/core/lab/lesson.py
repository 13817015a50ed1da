"""The HTML lesson report: each finished step's explanation, numbers and plots (inline SVG), the
lab workflows' audit levels, and the public sources. Self-contained: no scripts, no external files.
"""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path

from app.core.audit.report import LEVEL_COLOURS
from app.core.lab import explain
from app.core.lab.state import LabState
from app.core.lab.student import CurvePoint
from app.core.lab.styles import STYLE_TITLES
from app.core.lab.svg import Series, line_chart
from app.core.lab.tasks import TaskSet

HARD_COLOUR, SOFT_COLOUR, BASELINE_COLOUR = "#2563eb", "#d97706", "#8a8f98"
STYLE = ("body{font:15px/1.55 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#1f2328}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left}"
         "th{background:#f6f8fa}.lvl{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;"
         "font-size:13px}h2{margin-top:2em;border-bottom:1px solid #d0d7de}.muted{color:#59636e}"
         ".note{background:#f6f8fa;border-left:4px solid #8c959f;padding:.5em 1em}"
         "figure{margin:1em 0}.pending{color:#59636e;font-style:italic}")


def cost_note(point: CurvePoint) -> str:
    """Two lines under a curve point: teacher calls and tokens, then seconds."""
    return f"{point.teacher_calls} calls, {point.tokens} tok\n{point.seconds:.1f} s"


def agreement_chart(points: list[CurvePoint]) -> str:
    """SVG: held-out agreement against teacher samples per task (hard, soft, baseline), cost under each point."""
    series = [Series("hard labels", HARD_COLOUR, [p.hard_agreement for p in points])]
    if any(p.soft_agreement is not None for p in points):
        series.append(Series("soft labels", SOFT_COLOUR, [p.soft_agreement for p in points]))
    series.append(Series("majority baseline", BASELINE_COLOUR, [p.baseline_agreement for p in points], dashed=True))
    return line_chart("Student-teacher agreement on held-out inputs", [p.samples for p in points], series,
                      "agreement", "teacher samples per task (cost of those samples below)",
                      [cost_note(p) for p in points], y_max=1.0)


def kl_chart(points: list[CurvePoint]) -> str | None:
    """SVG: how far each student's probabilities are from the teacher's (KL divergence), or None
    without soft labels."""
    if not any(p.hard_kl is not None for p in points):
        return None
    series = [Series("hard-label student", HARD_COLOUR, [p.hard_kl for p in points]),
              Series("soft-label student", SOFT_COLOUR, [p.soft_kl for p in points])]
    return line_chart("Distance from the teacher's probabilities (KL, lower is closer)",
                      [p.samples for p in points], series, "KL divergence (nats)", "teacher samples per task",
                      percent=False)


def _p(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def _pending(step: str) -> str:
    return f"<p class='pending'>The {step} step has not been run yet.</p>"


def _badge(level: str) -> str:
    return f"<span class='lvl' style='background:{LEVEL_COLOURS.get(level, '#8a8f98')}'>{html.escape(level)}</span>"


def render_lesson(state: LabState, tasks: TaskSet) -> str:
    """The lesson report for whatever steps of `state` are done."""
    esc = html.escape
    config = state.config
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Stillroom distillation lab</title>",
             f"<style>{STYLE}</style></head><body><h1>The distillation lab</h1>",
             f"<p class='muted'>Run {esc(state.run_id)} \u00b7 style: {esc(STYLE_TITLES[config.style])} \u00b7 "
             f"{config.samples} teacher samples per task \u00b7 seed {config.seed}</p>",
             "<h2>What distillation is</h2>", _p(explain.WHAT_IS_DISTILLATION),
             "<h2>Why labs flag it</h2>", _p(explain.WHY_FLAGGED)]
    parts += ["<h2>1. Teacher</h2>", _p(explain.STEP_TEACHER),
              f"<p class='note'>{esc(explain.STYLE_NOTES[config.style])}</p>"]
    teacher = state.teacher
    if teacher is None:
        parts.append(_pending("teacher"))
    else:
        parts.append(f"<p>{teacher.calls} teacher calls, {teacher.tokens} tokens, {teacher.seconds:.1f} s, logged "
                     f"under the workflow <code>{esc(teacher.workflow)}</code> (ledger rows "
                     f"{teacher.answers[0].generation_id}\u2013{teacher.answers[-1].generation_id}).</p>"
                     if teacher.answers else "<p>The teacher made no calls.</p>")
        parts.append("<table><tr><th>task</th><th>labels</th><th>teacher's answers (training + held-out)</th>"
                     "<th>no label</th></tr>")
        for task_id, task in tasks.tasks.items():
            answers = [a for a in teacher.answers if a.item.task == task_id]
            counts = Counter(a.label for a in answers if a.label is not None)
            shown = ", ".join(f"{label} {counts.get(label, 0)}" for label in task.labels)
            parts.append(f"<tr><td>{esc(task.name)}</td><td>{esc(' / '.join(task.labels))}</td><td>{esc(shown)}</td>"
                         f"<td>{sum(a.label is None for a in answers)}</td></tr>")
        parts.append("</table><p>A few of the teacher's answers:</p><table><tr><th>input</th><th>answer</th>"
                     + ("<th>soft label</th>" if teacher.has_soft else "") + "</tr>")
        for answer in teacher.answers[:: max(1, len(teacher.answers) // 6)][:6]:
            soft = ""
            if teacher.has_soft:
                labels = tasks.tasks[answer.item.task].labels
                soft = "<td>" + (esc(", ".join(f"{label} {p:.2f}" for label, p in zip(labels, answer.soft)))
                                 if answer.soft else "\u2013") + "</td>"
            parts.append(f"<tr><td>{esc(answer.item.text)}</td><td>{esc(answer.label or '(none)')}</td>{soft}</tr>")
        parts.append("</table>")
    parts += ["<h2>2. Student</h2>", _p(explain.STEP_STUDENT)]
    student = state.student
    if student is None:
        parts.append(_pending("student"))
    else:
        parts.append(f"<figure>{agreement_chart(student.points)}</figure>")
        parts.append("<table><tr><th>samples per task</th><th>teacher calls</th><th>tokens</th><th>seconds</th>"
                     "<th>hard-label student</th><th>soft-label student</th><th>majority baseline</th></tr>")
        for p in student.points:
            soft = "\u2013" if p.soft_agreement is None else f"{p.soft_agreement:.0%}"
            parts.append(f"<tr><td>{p.samples}</td><td>{p.teacher_calls}</td><td>{p.tokens}</td>"
                         f"<td>{p.seconds:.1f}</td><td>{p.hard_agreement:.0%}</td><td>{soft}</td>"
                         f"<td>{p.baseline_agreement:.0%}</td></tr>")
        held = student.held_out_cost
        parts.append(f"</table><p class='muted'>Agreement is measured on {student.held_out} held-out inputs, which "
                     f"cost the teacher {held['calls']:.0f} more calls ({held['tokens']:.0f} tokens, "
                     f"{held['seconds']:.1f} s). Embedding took {student.embed_seconds:.1f} s, training every "
                     f"student {student.train_seconds:.1f} s.</p>")
    parts += ["<h2>3. Compare</h2>", _p(explain.STEP_COMPARE)]
    compare = state.compare
    if student is not None:
        final = student.final
        text = (f"With {final.samples} teacher samples per task the student gives the teacher's answer on "
                f"{final.hard_agreement:.0%} of held-out inputs, against {final.baseline_agreement:.0%} for the "
                f"majority baseline.")
        if final.soft_agreement is not None:
            text += f" Trained on soft labels it agrees on {final.soft_agreement:.0%}"
            if final.hard_kl is not None and final.soft_kl is not None:
                text += (f", and its probabilities are closer to the teacher's (KL {final.soft_kl:.2f} against "
                         f"{final.hard_kl:.2f} for the hard-label student)")
            text += "."
        else:
            text += " Soft labels need the logprobs style: run the lab with it to compare hard and soft."
        parts.append(_p(text))
        chart = kl_chart(student.points)
        if chart:
            parts.append(f"<figure>{chart}</figure>")
    if compare is None:
        parts.append(_pending("audit of the compare"))
    else:
        ids = [v.id for v in compare.workflows[0].patterns] if compare.workflows else []
        parts.append("<p>How each lab workflow looks to the audit:</p><table><tr><th>workflow</th><th>generations</th>"
                     + "".join(f"<th>{esc(i)}</th>" for i in ids) + "</tr>")
        for workflow in compare.workflows:
            parts.append(f"<tr><td>{esc(workflow.name)}</td><td>{workflow.generations}</td>"
                         + "".join(f"<td>{_badge(v.level)}</td>" for v in workflow.patterns) + "</tr>")
        parts.append("</table>")
        current = next((w for w in compare.workflows if w.name == f"lab:{config.style}"), None)
        if current is not None:
            for verdict in current.patterns:
                if verdict.level in ("medium", "high"):
                    parts.append(f"<h3>{esc(verdict.name)} {_badge(verdict.level)}</h3><ul>"
                                 + "".join(f"<li>{esc(r)}</li>" for r in verdict.reasons) + "</ul>")
    parts += ["<h2>What is legitimate</h2>", _p(explain.WHAT_IS_LEGITIMATE), "<h2>Sources</h2><ol>"]
    for source in explain.sources_for("what", "why", "legitimate", "logprobs"):
        parts.append(f"<li>{esc(source.citation())}</li>")
    parts.append("</ol></body></html>")
    return "\n".join(parts)


def write_lesson(state: LabState, tasks: TaskSet, path: Path) -> Path:
    """Write the lesson report (HTML) and, next to it, each chart as an SVG file; returns the HTML path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_lesson(state, tasks), encoding="utf-8")
    if state.student is not None:
        (path.parent / "agreement.svg").write_text(agreement_chart(state.student.points), encoding="utf-8")
        chart = kl_chart(state.student.points)
        if chart:
            (path.parent / "kl.svg").write_text(chart, encoding="utf-8")
    return path
