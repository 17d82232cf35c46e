"""Inline SVG charts for admin pages: no script, no external file, so they pass the
Content-Security-Policy unchanged.

The geometry is computed here; the markup lives in templates under core/charts/, where
Django's autoescaping covers every title and label (segment, variant and rule names are typed
by marketers and shown to other users)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

AXIS_COLOUR = "#9ca3af"
ADMIN_BLUE = "#417690"


@dataclass(frozen=True)
class Point:
    value: float
    title: str  # shown on hover over the point's marker


@dataclass(frozen=True)
class Series:
    """One line. `name` labels the line (its title, legend entry and `data-group`); a chart
    of a single unnamed line has no legend."""

    points: Sequence[Point]
    colour: str = ADMIN_BLUE
    name: str = ""
    css_class: str = ""


@dataclass(frozen=True)
class Bar:
    value: float
    title: str


@dataclass(frozen=True)
class Margins:
    left: int
    right: int
    top: int
    bottom: int


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def line_chart(
    *,
    series: Sequence[Series],
    x_labels: tuple[str, str],
    y_max: float,
    css_class: str,
    aria_label: str = "",
    title: str = "",
    width: int = 640,
    height: int = 180,
    margins: Margins = Margins(48, 12, 12, 28),
) -> SafeString:
    """Lines over a shared run of x positions (every series has one point per position),
    from 0 to `y_max`, with the first and last x labels under the axis and a legend when the
    lines are named. A lone position sits in the middle."""
    left, top = margins.left, margins.top
    plot_w = width - margins.left - margins.right
    plot_h = height - margins.top - margins.bottom
    count = max((len(line.points) for line in series), default=0)
    high = y_max or 1

    def xy(index: int, value: float) -> tuple[str, str]:
        share = index / (count - 1) if count > 1 else 0.5
        return f"{left + plot_w * share:.1f}", f"{top + plot_h * (1 - value / high):.1f}"

    lines = []
    for line in series:
        coordinates = [xy(index, point.value) for index, point in enumerate(line.points)]
        lines.append(
            {
                "series": line,
                "points": " ".join(f"{x},{y}" for x, y in coordinates),
                "markers": [
                    {"x": x, "y": y, "title": point.title}
                    for (x, y), point in zip(coordinates, line.points, strict=True)
                ],
            }
        )
    legend = [
        {
            "x": left + 90 * index,
            "text_x": left + 90 * index + 14,
            "name": line.name[:12],
            "colour": line.colour,
        }
        for index, line in enumerate(series)
        if line.name
    ]
    context = {
        "css_class": css_class,
        "aria_label": aria_label,
        "title": title,
        "width": width,
        "height": height,
        "axis_colour": AXIS_COLOUR,
        "left": left,
        "right_edge": left + plot_w,
        "top": top,
        "baseline": top + plot_h,
        "label_x": left - 6,
        "top_label_y": top + 10,
        "top_label": _number(y_max),
        "x_label_y": top + plot_h + 14,
        "first_label": x_labels[0],
        "last_label": x_labels[1],
        "lines": lines,
        "legend": legend,
        "legend_y": height - 14,
        "legend_text_y": height - 5,
    }
    return mark_safe(render_to_string("core/charts/line.html", context).strip())


def bar_chart(
    *,
    bars: Sequence[Bar],
    x_labels: tuple[str, str],
    top_label: str,
    aria_label: str,
    css_class: str = "",
    colour: str = ADMIN_BLUE,
    width: int = 640,
    height: int = 140,
) -> SafeString:
    """Bars side by side filling the width, scaled to the highest; `top_label` names the
    scale (e.g. "max 12/day") and the first and last x labels sit under the bars."""
    peak = max((bar.value for bar in bars), default=0) or 1
    step = width / max(len(bars), 1)
    plot_h = height - 30
    rects = [
        {
            "x": f"{index * step + 1:.1f}",
            "y": f"{height - 20 - (bar.value / peak) * plot_h:.1f}",
            "width": f"{max(step - 2, 1):.1f}",
            "height": f"{(bar.value / peak) * plot_h:.1f}",
            "title": bar.title,
        }
        for index, bar in enumerate(bars)
    ]
    context = {
        "css_class": css_class,
        "aria_label": aria_label,
        "width": width,
        "height": height,
        "colour": colour,
        "bars": rects,
        "label_y": height - 4,
        "first_label": x_labels[0],
        "last_label": x_labels[1],
        "top_label": top_label,
    }
    return mark_safe(render_to_string("core/charts/bar.html", context).strip())
