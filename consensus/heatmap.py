"""Confusion matrices drawn as small SVG heatmaps on the server: no JavaScript, printable.

Pure string building over nested lists; no ORM. Each cell is coloured by its share of the row
(so rare and common grades read on one scale) and carries its count, or its percentage for
estimated probabilities, as text.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from html import escape

# Gradient ids must be unique in a page: a gradient defined in a collapsed <details> is not
# rendered for the other heatmaps that would refer to it.
_ids = itertools.count()

# ColorBrewer "Blues", light to dark: a sequential scale that stays readable in greyscale.
_STOPS = ["#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"]
EMPTY_FILL = "#eceff3"


def _hex(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def colour_for(share: float) -> str:
    """Colour of a share in [0, 1] on the Blues scale, interpolated between stops."""
    share = min(max(share, 0.0), 1.0)
    position = share * (len(_STOPS) - 1)
    low = int(position)
    high = min(low + 1, len(_STOPS) - 1)
    t = position - low
    a, b = _hex(_STOPS[low]), _hex(_STOPS[high])
    r, g, bl = (round(x + (y - x) * t) for x, y in zip(a, b))
    return f"#{r:02x}{g:02x}{bl:02x}"


def heatmap_svg(
    matrix: Sequence[Sequence[float]],
    *,
    title: str,
    row_axis: str,
    col_axis: str,
    probabilities: bool = False,
    thin_rows: Sequence[bool] | None = None,
    cell: int = 34,
) -> str:
    """An SVG heatmap of a square grade-by-grade matrix, rows top to bottom from grade 0.

    `matrix` holds counts, or with `probabilities` row-stochastic values shown as percentages.
    Rows without data are grey with a dot; `thin_rows` greys rows whose estimate rests on too
    little data (their values are still printed, in grey).
    """
    n_rows = len(matrix)
    n_cols = len(matrix[0]) if n_rows else 0
    left, top = 58, 52
    width = left + n_cols * cell + 12
    height = top + n_rows * cell + 44
    font = max(10, min(13, cell // 2 - 2))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="14" class="hm-title" font-size="13" font-weight="600">{escape(title)}</text>',
        # Grades grow rightwards and downwards; the axis names carry no arrow that could say otherwise.
        f'<text x="{left + n_cols * cell / 2}" y="32" text-anchor="middle" font-size="11" fill="#5b6574">{escape(col_axis)}</text>',
        f'<text x="14" y="{top + n_rows * cell / 2}" text-anchor="middle" font-size="11" fill="#5b6574" '
        f'transform="rotate(-90 14 {top + n_rows * cell / 2})">{escape(row_axis)}</text>',
    ]
    for j in range(n_cols):
        parts.append(
            f'<text x="{left + j * cell + cell / 2}" y="{top - 6}" text-anchor="middle" font-size="11">{j}</text>'
        )
    for i, row in enumerate(matrix):
        total = float(sum(row))
        thin = bool(thin_rows[i]) if thin_rows is not None else False
        y = top + i * cell
        parts.append(f'<text x="{left - 8}" y="{y + cell / 2 + 4}" text-anchor="end" font-size="11">{i}</text>')
        for j, value in enumerate(row):
            x = left + j * cell
            share = (float(value) if probabilities else (float(value) / total if total else 0.0))
            if total == 0:
                fill, text, ink = EMPTY_FILL, "·", "#8a93a0"
            elif thin:
                fill, ink = EMPTY_FILL, "#8a93a0"
                text = f"{round(share * 100)}" if probabilities else f"{int(value)}"
            else:
                fill = colour_for(share)
                ink = "#ffffff" if share >= 0.5 else "#1d2430"
                text = f"{round(share * 100)}" if probabilities else f"{int(value)}"
            if total and not thin and (value == 0 if not probabilities else round(share * 100) == 0):
                text = ""  # zeros stay blank so the cells that matter stand out
            tip = (
                f"{row_axis} {i}, {col_axis} {j}: "
                + (f"{share:.0%}" if probabilities else f"{int(value)} ({share:.0%} of row)")
                + (" (too little data)" if thin else "")
            )
            diagonal = ' stroke="#1d2430" stroke-width="1.5"' if i == j else ' stroke="#ffffff" stroke-width="1"'
            parts.append(
                f'<g><title>{escape(tip)}</title><rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}"{diagonal}/>'
                + (
                    f'<text x="{x + cell / 2}" y="{y + cell / 2 + font / 3}" text-anchor="middle" font-size="{font}" fill="{ink}">{text}</text>'
                    if text
                    else ""
                )
                + "</g>"
            )
    # Legend: what the colour means.
    legend_y = top + n_rows * cell + 14
    legend_w = min(n_cols * cell, 150)
    gradient = f"hm-scale-{next(_ids)}"
    parts.append(
        f'<defs><linearGradient id="{gradient}" x1="0" x2="1" y1="0" y2="0">'
        + "".join(f'<stop offset="{k / (len(_STOPS) - 1):.3f}" stop-color="{c}"/>' for k, c in enumerate(_STOPS))
        + "</linearGradient></defs>"
    )
    parts.append(f'<rect x="{left}" y="{legend_y}" width="{legend_w}" height="8" fill="url(#{gradient})" stroke="#d9dee5"/>')
    parts.append(f'<text x="{left}" y="{legend_y + 21}" font-size="10" fill="#5b6574">0%</text>')
    parts.append(
        f'<text x="{left + legend_w}" y="{legend_y + 21}" text-anchor="end" font-size="10" fill="#5b6574">100% of row</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
