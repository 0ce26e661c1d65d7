"""The trend chart: open findings by severity at each report, as inline SVG (no script, no
external resource; WeasyPrint draws the same markup in the PDF)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

from inventory.reports.data import SEVERITIES

COLOURS = {
    "critical": "#8e1b1b",
    "high": "#d2461e",
    "medium": "#e0a100",
    "low": "#4b7fb8",
    "info": "#9aa5b1",
}
WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 34
TICKS = 5


def _axis(value: int) -> tuple[int, int]:
    """The axis top and step: five steps of 1, 2 or 5 times a power of ten."""
    step = 1
    while step * TICKS < value:
        for factor in (2, 2.5, 2):  # 1 -> 2 -> 5 -> 10 -> 20 -> 50 ...
            step = int(step * factor)
            if step * TICKS >= value:
                break
    return step * TICKS, step


def trend_svg(
    points: Sequence[Mapping[str, Any]],
    *,
    day: Any,
    label: Any,
    title: str,
) -> Markup:
    """Stacked bars, one per report, oldest left; `day` formats a date, `label` a severity."""
    shown = [s for s in SEVERITIES if s != "info"]
    totals = [sum(int(p["open_by_severity"].get(s, 0)) for s in shown) for p in points]
    top, step = _axis(max(totals or [0]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(points), 1)
    bar = min(48.0, slot * 0.6)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT + 26}" '
        f'width="100%" role="img" aria-label="{escape(title)}" class="trend">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(TICKS + 1):
        value = step * i
        y = TOP + plot_h - plot_h * i / TICKS
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#d9dee4" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#4a5560">{value}</text>'
        )
    for index, point in enumerate(points):
        x = LEFT + slot * index + (slot - bar) / 2
        y = TOP + plot_h
        for severity in reversed(shown):
            count = int(point["open_by_severity"].get(severity, 0))
            if not count:
                continue
            h = plot_h * count / top
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[severity]}">'
                f"<title>{escape(label(severity))}: {count}</title></rect>"
            )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" font-size="11" '
            f'font-weight="bold" fill="#1f2933">{totals[index]}</text>'
        )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" '
            f'font-size="11" fill="#4a5560">{escape(day(point["at"]))}</text>'
        )
    legend_x = LEFT
    for severity in shown:
        parts.append(
            f'<rect x="{legend_x}" y="{HEIGHT + 8}" width="12" height="12" '
            f'fill="{COLOURS[severity]}"/><text x="{legend_x + 17}" y="{HEIGHT + 18}" '
            f'font-size="12" fill="#1f2933">{escape(label(severity))}</text>'
        )
        legend_x += 110
    parts.append("</svg>")
    return Markup("".join(parts))
