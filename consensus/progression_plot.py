"""The cumulative probability plot of change scores as inline SVG, drawn on the server."""
from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 760, 360
MARGIN = {"left": 56, "right": 250, "top": 16, "bottom": 40}
LEGEND_CHARS = 36
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
CONSENSUS_COLOUR = "#d62728"


def cumulative_plot_svg(
    curves: Sequence[tuple[str, Sequence[tuple[float, float]], bool]], *, thresholds: Sequence[tuple[str, float]] = (), title: str = "",
    x_label: str = "", y_label: str = "",
) -> str:
    """One line per (label, points, is_consensus): change (y) against cumulative probability (x).

    Horizontal dashed lines mark ``thresholds`` (e.g. the SDC). Returns "" when no curve has points.
    """
    values = [c for _label, points, _ in curves for _p, c in points] + [t for _n, t in thresholds]
    if not any(points for _label, points, _ in curves):
        return ""
    low, high = min(values + [0.0]), max(values + [1.0])
    if high - low < 1e-9:
        high = low + 1.0
    pad = 0.05 * (high - low)
    low, high = low - pad, high + pad
    plot_w = WIDTH - MARGIN["left"] - MARGIN["right"]
    plot_h = HEIGHT - MARGIN["top"] - MARGIN["bottom"]

    def x(p: float) -> float:
        return MARGIN["left"] + p * plot_w

    def y(c: float) -> float:
        return MARGIN["top"] + (high - c) / (high - low) * plot_h

    parts = [
        f'<svg class="pg-plot" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        f'<rect x="{MARGIN["left"]}" y="{MARGIN["top"]}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>',
    ]
    for tick in _ticks(low, high):
        parts.append(f'<line x1="{MARGIN["left"] - 4}" x2="{MARGIN["left"] + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{MARGIN["left"] - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11">{tick:g}</text>')
    for p in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<text x="{x(p):.1f}" y="{HEIGHT - MARGIN["bottom"] + 16}" text-anchor="middle" font-size="11">{p:g}</text>')
    parts.append(f'<line x1="{x(0):.1f}" x2="{x(1):.1f}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#555"/>')
    parts.append(f'<text x="{x(0.5):.1f}" y="{HEIGHT - 6}" text-anchor="middle" font-size="11">{escape(x_label)}</text>')
    parts.append(
        f'<text transform="translate(14 {MARGIN["top"] + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle" font-size="11">{escape(y_label)}</text>'
    )
    for name, value in thresholds:
        parts.append(
            f'<line x1="{x(0):.1f}" x2="{x(1):.1f}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#555" stroke-dasharray="4 3"/>'
            f'<text x="{x(0) + 4:.1f}" y="{y(value) - 3:.1f}" font-size="10">{escape(name)}</text>'
        )
    colour_index = 0
    for i, (label, points, is_consensus) in enumerate(curves):
        if not points:
            continue
        colour = CONSENSUS_COLOUR if is_consensus else PALETTE[colour_index % len(PALETTE)]
        colour_index += 0 if is_consensus else 1
        path = " ".join(f"{x(p):.1f},{y(c):.1f}" for p, c in points)
        width = 2.5 if is_consensus else 1.4
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="{width}" points="{path}"><title>{escape(label)}</title></polyline>')
        ly = MARGIN["top"] + 14 + 16 * i
        lx = WIDTH - MARGIN["right"] + 10
        parts.append(f'<line x1="{lx}" x2="{lx + 18}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" stroke-width="{width}"/>')
        short = label if len(label) <= LEGEND_CHARS else "…" + label[-(LEGEND_CHARS - 1):]
        parts.append(f'<text x="{lx + 22}" y="{ly}" font-size="11">{escape(short)}<title>{escape(label)}</title></text>')
    parts.append("</svg>")
    return "".join(parts)


def _ticks(low: float, high: float) -> list[float]:
    span = high - low
    step = 10 ** math.floor(math.log10(span / 4)) if span > 0 else 1.0
    for factor in (1, 2, 5, 10):
        if span / (step * factor) <= 6:
            step *= factor
            break
    start = math.ceil(low / step) * step
    return [round(start + i * step, 10) for i in range(int((high - start) / step) + 1)]
