"""The rating-over-time plot of the moderator's page, as an inline SVG string built here (no plotting
library, no script): one line per model version of its mean rating per day, on -1..+1.

Versions differ by colour *and* by marker shape and dash pattern, so the plot reads without colour.
Every text is escaped; the viewBox is fixed and CSS scales the picture. The page shows the same
numbers as a table under it, for screen readers and for exact values.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date

from captionbot.service import RatingPoint

WIDTH = 640
LEFT, RIGHT, TOP, PLOT_H = 64, 20, 16, 240
PLOT_W = WIDTH - LEFT - RIGHT
AXIS_BOTTOM = TOP + PLOT_H
LEGEND_TOP = AXIS_BOTTOM + 56
LEGEND_ROW, LEGEND_COL, LEGEND_COLS = 22, 190, 3
INK, GRID = "#1a1a1a", "#8a8a8a"
# Dark enough for 3:1 against white (graphics contrast); told apart by shape and dashes too.
COLOURS = ["#0b4fb3", "#b3380b", "#1b7a3a", "#7a2f8f", "#8a5a00", "#1a1a1a"]
DASHES = ["", "8 4", "2 4", "10 4 2 4", "4 4", "1 3"]
SHAPES = ["circle", "square", "triangle", "diamond", "cross", "plus"]


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _day_label(day: date) -> str:
    return f"{day.day} {day:%b}"


def _marker(shape: str, x: float, y: float, colour: str) -> str:
    r = 4.5
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{colour}"/>'
    if shape == "square":
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r}" height="{2 * r}" fill="{colour}"/>'
    if shape == "triangle":
        pts = f"{x:.1f},{y - r - 1:.1f} {x - r - 1:.1f},{y + r:.1f} {x + r + 1:.1f},{y + r:.1f}"
        return f'<polygon points="{pts}" fill="{colour}"/>'
    if shape == "diamond":
        pts = f"{x:.1f},{y - r - 1:.1f} {x + r + 1:.1f},{y:.1f} {x:.1f},{y + r + 1:.1f} {x - r - 1:.1f},{y:.1f}"
        return f'<polygon points="{pts}" fill="{colour}"/>'
    if shape == "cross":
        d = f"M{x - r:.1f} {y - r:.1f}L{x + r:.1f} {y + r:.1f}M{x - r:.1f} {y + r:.1f}L{x + r:.1f} {y - r:.1f}"
    else:  # plus
        d = f"M{x - r - 1:.1f} {y:.1f}H{x + r + 1:.1f}M{x:.1f} {y - r - 1:.1f}V{y + r + 1:.1f}"
    return f'<path d="{d}" stroke="{colour}" stroke-width="2.5" fill="none"/>'


def _summary(series: dict[str, list[RatingPoint]], first: date, last: date) -> str:
    parts = []
    for name, pts in series.items():
        total = sum(p.ratings for p in pts)
        mean = sum(p.mean * p.ratings for p in pts) / total
        latest = pts[-1]
        parts.append(
            f"{name}: {total} ratings on {len(pts)} days, mean {mean:+.2f}, "
            f"latest {latest.mean:+.2f} on {_day_label(latest.day)}"
        )
    span = _day_label(first) if first == last else f"{_day_label(first)} to {_day_label(last)} {last.year}"
    return f"Mean rating per day (from -1 to +1), {span}, {len(series)} versions. " + "; ".join(parts) + "."


def rating_chart_svg(points: Sequence[RatingPoint]) -> str | None:
    """The plot as an ``<svg>`` element, or None when there are no ratings to plot."""
    if not points:
        return None
    series: dict[str, list[RatingPoint]] = {}
    for p in sorted(points, key=lambda p: (p.day, p.version)):
        series.setdefault(p.version, []).append(p)
    first, last = min(p.day for p in points), max(p.day for p in points)
    span_days = max(1, (last - first).days)

    def x_of(day: date) -> float:
        if first == last:
            return LEFT + PLOT_W / 2
        return LEFT + PLOT_W * (day - first).days / span_days

    def y_of(mean: float) -> float:
        return TOP + PLOT_H * (1 - max(-1.0, min(1.0, mean))) / 2

    legend_rows = (len(series) + LEGEND_COLS - 1) // LEGEND_COLS
    height = LEGEND_TOP + legend_rows * LEGEND_ROW
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="rating-chart-title rating-chart-desc" font-family="system-ui, sans-serif" font-size="13">',
        '<title id="rating-chart-title">Rating over time, per model version</title>',
        f'<desc id="rating-chart-desc">{_esc(_summary(series, first, last))}</desc>',
    ]
    for tick in (-1.0, -0.5, 0.0, 0.5, 1.0):  # y grid; the zero line stands out
        y = y_of(tick)
        width, dash = ("2", "") if tick == 0 else ("1", ' stroke-dasharray="2 4"')
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + PLOT_W}" y2="{y:.1f}" stroke="{GRID}" '
            f'stroke-width="{width}"{dash}/>'
        )
        out.append(f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end" fill="{INK}">{tick:+.1f}</text>')
    out.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{AXIS_BOTTOM}" stroke="{INK}"/>')
    out.append(f'<line x1="{LEFT}" y1="{AXIS_BOTTOM}" x2="{LEFT + PLOT_W}" y2="{AXIS_BOTTOM}" stroke="{INK}"/>')
    days = sorted({p.day for p in points})
    step = max(1, (len(days) + 5) // 6)  # at most about six day labels
    for day in days[::step] + ([days[-1]] if (len(days) - 1) % step else []):
        x = x_of(day)
        out.append(f'<line x1="{x:.1f}" y1="{AXIS_BOTTOM}" x2="{x:.1f}" y2="{AXIS_BOTTOM + 5}" stroke="{INK}"/>')
        out.append(
            f'<text x="{x:.1f}" y="{AXIS_BOTTOM + 20}" text-anchor="middle" fill="{INK}">{_esc(_day_label(day))}</text>'
        )
    out.append(
        f'<text x="{LEFT + PLOT_W / 2}" y="{AXIS_BOTTOM + 40}" text-anchor="middle" fill="{INK}">Day (UTC)</text>'
    )
    out.append(
        f'<text x="14" y="{TOP + PLOT_H / 2}" text-anchor="middle" fill="{INK}" '
        f'transform="rotate(-90 14 {TOP + PLOT_H / 2})">Mean rating</text>'
    )
    for i, (name, pts) in enumerate(series.items()):
        colour, dash, shape = COLOURS[i % len(COLOURS)], DASHES[i % len(DASHES)], SHAPES[i % len(SHAPES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        coords = " ".join(f"{x_of(p.day):.1f},{y_of(p.mean):.1f}" for p in pts)
        out.append(f'<g class="series" data-version="{_esc(name)}">')
        out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2.5"{dash_attr}/>')
        out.extend(_marker(shape, x_of(p.day), y_of(p.mean), colour) for p in pts)
        out.append("</g>")
        lx = LEFT + (i % LEGEND_COLS) * LEGEND_COL
        ly = LEGEND_TOP + (i // LEGEND_COLS) * LEGEND_ROW - 6
        out.append(
            f'<line x1="{lx}" y1="{ly}" x2="{lx + 28}" y2="{ly}" stroke="{colour}" stroke-width="2.5"{dash_attr}/>'
        )
        out.append(_marker(shape, lx + 14, ly, colour))
        label = name if len(name) <= 20 else name[:19] + "…"  # the table under the plot has it whole
        out.append(f'<text x="{lx + 34}" y="{ly + 4}" fill="{INK}">{_esc(label)}</text>')
    out.append("</svg>")
    return "\n".join(out)


__all__ = ["rating_chart_svg"]
