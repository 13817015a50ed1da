"""Small, dependency-free SVG line charts for the lesson report (no Qt, no plotting library)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 340
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 150, 36, 86


@dataclass(frozen=True)
class Series:
    """One line: its name in the legend, its colour, y values aligned with the chart's x values
    (None for a missing point) and whether it is drawn dashed."""

    name: str
    colour: str
    values: Sequence[float | None]
    dashed: bool = False


def line_chart(title: str, x_values: Sequence[float], series: Sequence[Series], y_label: str,
               x_label: str, x_notes: Sequence[str] = (), y_max: float | None = None,
               percent: bool = True, log_x: bool = True) -> str:
    """An SVG document: the series against x (log2 scale when log_x), a legend on the right and an
    optional note under each x tick (e.g. the cost of that point)."""
    esc = html.escape
    plot_w, plot_h = WIDTH - MARGIN_LEFT - MARGIN_RIGHT, HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    xs = [math.log2(x) if log_x else float(x) for x in x_values]
    x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    values = [v for s in series for v in s.values if v is not None]
    top = y_max if y_max is not None else (max(values) * 1.1 if values else 1.0) or 1.0

    def px(x: float) -> float:
        return MARGIN_LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return MARGIN_TOP + plot_h - min(max(y, 0.0), top) / top * plot_h

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' "
             f"viewBox='0 0 {WIDTH} {HEIGHT}' font-family='system-ui,sans-serif' font-size='12'>",
             f"<title>{esc(title)}</title><rect width='100%' height='100%' fill='#ffffff'/>",
             f"<text x='{MARGIN_LEFT}' y='20' font-size='14' font-weight='600'>{esc(title)}</text>"]
    for step in range(5):
        y = top * step / 4
        label = f"{y * 100:.0f}%" if percent else f"{y:.2f}"
        parts.append(f"<line x1='{MARGIN_LEFT}' x2='{MARGIN_LEFT + plot_w}' y1='{py(y):.1f}' y2='{py(y):.1f}' "
                     f"stroke='#e5e7eb'/><text x='{MARGIN_LEFT - 6}' y='{py(y) + 4:.1f}' text-anchor='end' "
                     f"fill='#57606a'>{label}</text>")
    for index, (x, raw) in enumerate(zip(xs, x_values)):
        parts.append(f"<line x1='{px(x):.1f}' x2='{px(x):.1f}' y1='{MARGIN_TOP + plot_h}' "
                     f"y2='{MARGIN_TOP + plot_h + 4}' stroke='#57606a'/><text x='{px(x):.1f}' "
                     f"y='{MARGIN_TOP + plot_h + 17}' text-anchor='middle'>{esc(_number(raw))}</text>")
        if index < len(x_notes):
            for line_no, line in enumerate(x_notes[index].split("\n")):
                parts.append(f"<text x='{px(x):.1f}' y='{MARGIN_TOP + plot_h + 31 + 12 * line_no}' "
                             f"text-anchor='middle' font-size='10' fill='#57606a'>{esc(line)}</text>")
    parts.append(f"<text x='{MARGIN_LEFT + plot_w / 2:.1f}' y='{HEIGHT - 6}' text-anchor='middle' "
                 f"fill='#1f2328'>{esc(x_label)}</text>")
    parts.append(f"<text transform='translate(16 {MARGIN_TOP + plot_h / 2:.1f}) rotate(-90)' "
                 f"text-anchor='middle' fill='#1f2328'>{esc(y_label)}</text>")
    parts.append(f"<rect x='{MARGIN_LEFT}' y='{MARGIN_TOP}' width='{plot_w}' height='{plot_h}' fill='none' "
                 f"stroke='#8c959f'/>")
    for rank, line in enumerate(series):
        points = [(px(x), py(v)) for x, v in zip(xs, line.values) if v is not None]
        dash = " stroke-dasharray='6 4'" if line.dashed else ""
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f"<polyline points='{path}' fill='none' stroke='{line.colour}' stroke-width='2.2'{dash}/>")
        parts += [f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3.5' fill='{line.colour}'/>" for x, y in points]
        legend_y = MARGIN_TOP + 14 + rank * 20
        legend_x = MARGIN_LEFT + plot_w + 14
        parts.append(f"<line x1='{legend_x}' x2='{legend_x + 22}' y1='{legend_y - 4}' y2='{legend_y - 4}' "
                     f"stroke='{line.colour}' stroke-width='2.2'{dash}/><text x='{legend_x + 28}' y='{legend_y}'>"
                     f"{esc(line.name)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
