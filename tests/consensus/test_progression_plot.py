"""The cumulative probability plot drawn as inline SVG."""
from __future__ import annotations

import re

from consensus.progression_plot import HEIGHT, MARGIN, cumulative_plot_svg


def test_plot_draws_one_polyline_per_curve_with_higher_change_drawn_higher_and_escapes_labels() -> None:
    svg = cumulative_plot_svg(
        [("<b>reader</b>", [(0.25, -1.0), (0.75, 3.0)], False), ("Consensus", [(0.25, 0.0), (0.75, 2.0)], True)],
        thresholds=[("SDC 1.5", 1.5)],
    )
    assert "<b>" not in svg and "&lt;b&gt;reader&lt;/b&gt;" in svg
    lines = re.findall(r'<polyline[^>]*points="([^"]+)"', svg)
    assert len(lines) == 2
    (x0, y0), (x1, y1) = [tuple(map(float, p.split(","))) for p in lines[0].split()]
    assert x1 > x0 and y1 < y0  # a larger change sits higher on the page
    assert MARGIN["top"] <= y1 and y0 <= HEIGHT - MARGIN["bottom"]
    assert 'stroke-dasharray="4 3"' in svg and "SDC 1.5" in svg


def test_plot_without_points_is_empty_so_the_page_says_so_in_words() -> None:
    assert cumulative_plot_svg([("reader", [], False)]) == ""
