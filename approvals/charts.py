"""Charts drawn by the server as inline SVG: no chart library, nothing from the internet.

Every text in a chart is escaped (format_html); a chart has a title and a description for
screen readers, and each bar says its value in words too.
"""

from __future__ import annotations

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

ROW = 26
LABEL_WIDTH = 190
BAR_WIDTH = 360
VALUE_WIDTH = 90


def bar_chart(
    *, title: str, rows: list[tuple[str, float]], unit: str, scale_max: float | None = None
) -> SafeString:
    """A horizontal bar chart of `rows` (label, value), values written with `unit`
    ('%' for shares given as 0..100, 'h' for hours)."""
    top = scale_max if scale_max is not None else max((v for _, v in rows), default=0.0)
    top = top or 1.0
    height = ROW * max(len(rows), 1) + 8
    width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH
    bars = format_html_join(
        "",
        '<g transform="translate(0,{})"><text x="{}" y="17" text-anchor="end" class="chart-label">{}</text>'
        '<rect x="{}" y="4" width="{}" height="18" class="chart-bar"><title>{}: {}</title></rect>'
        '<text x="{}" y="17" class="chart-value">{}</text></g>',
        (
            (
                index * ROW + 4,
                LABEL_WIDTH - 8,
                label,
                LABEL_WIDTH,
                f"{max(value, 0) / top * BAR_WIDTH:.1f}",
                label,
                _value_text(value, unit),
                LABEL_WIDTH + max(value, 0) / top * BAR_WIDTH + 6,
                _value_text(value, unit),
            )
            for index, (label, value) in enumerate(rows)
        ),
    )
    empty = (
        format_html('<text x="8" y="20" class="chart-label">{}</text>', "No data in this period.")
        if not rows
        else ""
    )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {} {}" width="{}" height="{}">'
        "<title>{}</title>{}{}</svg>",
        width,
        height,
        width,
        height,
        title,
        bars,
        empty,
    )


def _value_text(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.0f}%"
    if unit == "h" and value >= 48:
        return f"{value / 24:.1f} d"
    return f"{value:.1f} {unit}"
