"""Daily usage as an SVG bar chart, drawn on the server: no script, no chart library, nothing fetched.

The picture is the same numbers the page's table holds; for screen readers the chart is one image whose title
names the meter and whose description sums it up (total and peak day), and each bar carries its own title.
Colours and fonts come from the portal's stylesheet through class names: the SVG has no `style` attributes, so
the Content-Security-Policy needs no `unsafe-inline`.
"""

from __future__ import annotations

import calendar
import datetime
from decimal import Decimal
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 480, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 6, 12, 30


def days_of(period: str) -> list[datetime.date]:
    year, month = (int(part) for part in period.split("-"))
    return [datetime.date(year, month, day) for day in range(1, calendar.monthrange(year, month)[1] + 1)]


def nice_ceiling(value: Decimal) -> Decimal:
    """The smallest of 1, 2, 2.5, 5 times 10^k at or above `value` (an axis maximum people read at a glance)."""
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    for _ in range(2):
        for step in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)):
            candidate = step.scaleb(exponent)
            if candidate >= value:
                return candidate
        exponent += 1
    return value


def bar_chart(chart_id: str, title: str, description: str, values: list[tuple[datetime.date, Decimal]],
              number, day_label) -> Markup:
    """An SVG of one bar per day. `number(Decimal) -> str` and `day_label(date) -> str` format in the page's
    language."""
    top = nice_ceiling(max((value for _, value in values), default=Decimal(0)))
    whole = all(value == value.to_integral_value() for _, value in values)
    ticks = int(top) if whole and top < 4 else 4  # counts below 4: a line per whole number, never 0.25 of a run
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(values), 1)
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-labelledby="{chart_id}-title {chart_id}-desc" focusable="false">',
             f'<title id="{chart_id}-title">{escape(title)}</title>',
             f'<desc id="{chart_id}-desc">{escape(description)}</desc>']
    for tick in range(ticks + 1):
        level = top * tick / ticks
        y = TOP + plot_h - float(level / top) * plot_h
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{escape(number(level))}</text>')
    for index, (day, value) in enumerate(values):
        height = float(value / top) * plot_h if top else 0.0
        x = LEFT + index * slot + slot * 0.15
        y = TOP + plot_h - height
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{height:.1f}">'
                     f'<title>{escape(day_label(day))}: {escape(number(value))}</title></rect>')
        if day.day == 1 or day.day % 5 == 0:
            parts.append(f'<text class="axis" x="{x + slot * 0.35:.1f}" y="{HEIGHT - 10}" text-anchor="middle">'
                         f'{day.day}</text>')
    parts.append(f'<line class="baseline" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" '
                 f'y2="{TOP + plot_h}"/></svg>')
    return Markup("".join(parts))  # noqa: S704 - every text in it is escaped above
