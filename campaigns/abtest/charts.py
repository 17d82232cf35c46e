"""Inline SVG charts for the results page: no JavaScript, no external files. Every label goes
through format_html or core's chart templates (variant names are typed by marketers, and
shown to other users). The cumulative chart is core's line chart; the rates chart, a dot and
its interval per group, is drawn here."""

from __future__ import annotations

import datetime as dt
import math

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from campaigns.abtest.report import ArmReport, DayReport, Report
from core.charts import Margins, Point, Series, line_chart

COLOURS = ("#6b7280", "#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2")
WIDTH = 640
LABEL_WIDTH = 110


def _colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


# Axis maxima as a multiple of a power of ten, with how many even divisions read well.
_STEPS = ((1, 5), (1.5, 3), (2, 4), (2.5, 5), (3, 3), (4, 4), (5, 5), (6, 3), (8, 4), (10, 5))


def _nice_axis(value: float) -> tuple[float, int]:
    """(axis maximum at or above value, number of divisions), e.g. 0.126 → (0.15, 3)."""
    if value <= 0:
        return (1.0, 5)
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step, divisions in _STEPS:
        if step * magnitude >= value * (1 - 1e-12):
            return (step * magnitude, divisions)
    return (10 * magnitude, 5)


def _percent(value: float) -> str:
    text = f"{value * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def rates_chart(report: Report) -> SafeString:
    """One row per group: the decision metric's rate as a dot with its 95 % Wilson interval
    as an error bar."""
    arms = [a for a in report["arms"] if a["metric_trials"] > 0]
    if not arms:
        return format_html('<p class="ab-chart-empty">{}</p>', "No recipients yet.")
    top, divisions = _nice_axis(max(a["metric_ci"][1] for a in arms) * 1.05)
    plot = WIDTH - LABEL_WIDTH - 20
    row = 34
    height = row * len(arms) + 40

    def x(rate: float) -> str:
        return f"{LABEL_WIDTH + plot * min(rate, top) / top:.1f}"

    def bar(index: int, arm: ArmReport) -> tuple[str, ...]:
        # Numbers are formatted here: format_html escapes its arguments into strings, which
        # would no longer take a format spec such as {:.1f}.
        y = 20 + index * row
        low, high = arm["metric_ci"]
        rate = arm["metric_rate"] or 0.0
        colour = _colour(index)
        return (
            arm["name"],
            str(LABEL_WIDTH - 8),
            str(y + 4),
            arm["name"],
            *(x(low), x(high), str(y), str(y), colour),
            *(x(low), x(low), str(y - 6), str(y + 6), colour),
            *(x(high), x(high), str(y - 6), str(y + 6), colour),
            *(x(rate), str(y), colour),
            f"{arm['name']}: {rate:.2%} (95 % CI {low:.2%} to {high:.2%})",
        )

    line = '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-width="2"/>'
    rows = format_html_join(
        "",
        '<g class="ab-rate" data-group="{}"><text x="{}" y="{}" text-anchor="end" '
        'font-size="12">{}</text>'
        + line * 3
        + '<circle cx="{}" cy="{}" r="5" fill="{}"><title>{}</title></circle></g>',
        (bar(i, a) for i, a in enumerate(arms)),
    )
    ticks = format_html_join(
        "",
        '<line x1="{0}" x2="{0}" y1="8" y2="{1}" stroke="#e5e7eb"/>'
        '<text x="{0}" y="{2}" text-anchor="middle" font-size="11" fill="#374151">{3}</text>',
        (
            (
                f"{LABEL_WIDTH + plot * k / divisions:.1f}",
                height - 26,
                height - 10,
                _percent(top * k / divisions),
            )
            for k in range(divisions + 1)
        ),
    )
    return format_html(
        '<svg class="ab-chart ab-rates" role="img" viewBox="0 0 {} {}" width="{}" height="{}" '
        'xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}{}</svg>',
        WIDTH,
        height,
        WIDTH,
        height,
        f"{report['metric']} rate by group with 95 % confidence intervals",
        ticks,
        rows,
    )


def cumulative_chart(report: Report) -> SafeString:
    """Cumulative converted recipients per group, one point per day with a conversion."""
    if not report["daily"]:
        return format_html('<p class="ab-chart-empty">{}</p>', "No conversions yet.")
    # Every line starts at 0 on the day before the first conversion.
    first = dt.date.fromisoformat(report["daily"][0]["date"]) - dt.timedelta(days=1)
    days: list[DayReport] = [{"date": first.isoformat(), "cumulative": {}}, *report["daily"]]
    top, _divisions = _nice_axis(max(max(d["cumulative"].values(), default=0) for d in days) or 1)
    series = [
        Series(
            points=[
                Point(
                    day["cumulative"].get(arm["name"], 0),
                    f"{arm['name']} {day['date']}: {day['cumulative'].get(arm['name'], 0)}",
                )
                for day in days
            ],
            colour=_colour(index),
            name=arm["name"],
            css_class="ab-series",
        )
        for index, arm in enumerate(report["arms"])
    ]
    return line_chart(
        series=series,
        x_labels=(days[0]["date"], days[-1]["date"]),
        y_max=top,
        css_class="ab-chart ab-cumulative",
        title="Cumulative conversions per group, by day",
        width=WIDTH,
        height=240,
        margins=Margins(50, 20, 12, 40),
    )
