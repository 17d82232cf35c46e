"""The flow diagram: a version's step tree laid out as boxes and lines, rendered as SVG by an
autoescaped template (no JavaScript), so a contact-facing word a marketer typed (a campaign
name, an attribute value) can never become markup.

Layout: a step list is a column; a step that holds lists (branch, wait_for, split) puts them
side by side below its box, each under its label (then / else, matched / timed out, arms
with their weights and the holdout), and the lanes join again below the widest one. An exit
step ends its lane; the top list ends in the "end" node. Counts arrive as text per step id
and per (step id, list key), so the journey page and the dry run share one drawing."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from journeys.decisions import HOLDOUT
from journeys.flow import Step, nested_lists
from journeys.steps import steps as step_registry
from triggers.conditions import conditions as condition_registry

BOX_W = 240
BOX_H = 82
GAP = 26
LABEL_H = 34
LANE_GAP = 20
MARGIN = 16
HEAD_H = 34
END_H = 40
WRAP = 36
EMPTY_LANE_W = 180


@dataclass
class Box:
    x: float
    y: float
    w: float
    h: float
    step_id: str
    kind: str  # a step type, or "end"
    lines: list[str]
    counts: str
    title: str

    @property
    def tx(self) -> float:
        return self.x + 8

    @property
    def rows(self) -> list[tuple[float, str]]:
        """(baseline y, text) of the description lines, under the id line."""
        return [(self.y + 34 + 15 * i, line) for i, line in enumerate(self.lines)]

    @property
    def first_y(self) -> float:
        return self.y + 17

    @property
    def counts_y(self) -> float:
        return self.y + self.h - 10


@dataclass
class Edge:
    points: str  # "x1,y1 x2,y2 ..."
    arrow: bool = True


@dataclass
class Label:
    x: float
    y: float
    text: str
    count: str

    @property
    def count_y(self) -> float:
        return self.y + 14


@dataclass
class Drawing:
    width: float
    height: float
    heading: str
    boxes: list[Box] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)


def lanes(step: Step) -> list[tuple[str, str, list[Step]]]:
    """(list key, label, steps) for each way out of a step, in diagram order; a split's
    holdout is a lane of its own with no steps."""
    kind = step.get("type")
    if kind == "split":
        out = []
        for index, (key, items) in enumerate(nested_lists(step)):
            weight = (step.get("arms") or [])[index].get("weight")
            out.append((key, f"{chr(ord('A') + index)}: weight {weight}", items))
        if step.get("holdout"):
            out.append((HOLDOUT, f"holdout {step['holdout']}%", []))
        return out
    names = {"timed_out": "timed out"}
    return [(key, names.get(key, key), items) for key, items in nested_lists(step)]


def _conditions_text(step: Step) -> str:
    words = []
    for entry in step.get("conditions") or []:
        handler = condition_registry.get(str(entry.get("id")))
        words.append(
            handler.describe(dict(handler.options_of(entry))) if handler else str(entry.get("id"))
        )
    joined = (" or " if step.get("match") == "any" else " and ").join(words)
    return f"if {joined}" + (" (since entry)" if step.get("since_entry") else "")


def describe(step: Step, campaign_names: Mapping[str, str]) -> str:
    """The registry's words for a step; a send names its campaign as the marketer does, a
    branch spells out its conditions."""
    kind = str(step.get("type"))
    if kind == "send":
        slug = str(step.get("campaign"))
        text = f"send {campaign_names.get(slug, slug)}"
        fallback = step.get("fallback_campaign")
        if fallback:
            text += f", else {campaign_names.get(str(fallback), str(fallback))}"
        return text
    if kind == "branch":
        return _conditions_text(step)
    handler = step_registry.get(kind)
    lists = {"then", "else", "matched", "timed_out"}
    options = {k: v for k, v in step.items() if k not in {"id", "type", *lists}}
    return handler.describe(options) if handler is not None else kind


def _list_size(items: Sequence[Step]) -> tuple[float, float]:
    if not items:
        return (EMPTY_LANE_W, 0.0)
    sizes = [_step_size(step) for step in items]
    return (max(w for w, _ in sizes), sum(h for _, h in sizes) + GAP * (len(items) - 1))


def _step_size(step: Step) -> tuple[float, float]:
    ways = lanes(step)
    if not ways:
        return (BOX_W, BOX_H)
    sizes = [_list_size(items) for _, _, items in ways]
    width = sum(w for w, _ in sizes) + LANE_GAP * (len(sizes) - 1)
    return (max(BOX_W, width), BOX_H + GAP + LABEL_H + max(h for _, h in sizes) + GAP)


class _Painter:
    def __init__(
        self,
        drawing: Drawing,
        counts: Mapping[str, str],
        lane_counts: Mapping[tuple[str, str], str],
        campaign_names: Mapping[str, str],
    ) -> None:
        self.drawing = drawing
        self.counts = counts
        self.lane_counts = lane_counts
        self.campaign_names = campaign_names

    def column(self, items: Sequence[Step], cx: float, y: float) -> tuple[float, bool]:
        """Draw a list centred on cx from y; returns (bottom, whether it falls through)."""
        through = True
        for index, step in enumerate(items):
            if index:
                self.drawing.edges.append(Edge(f"{cx},{y} {cx},{y + GAP}"))
                y += GAP
            y, through = self.step(step, cx, y)
            if not through:
                break
        return y, through

    def step(self, step: Step, cx: float, y: float) -> tuple[float, bool]:
        step_id = str(step["id"])
        text = describe(step, self.campaign_names)
        wrapped = textwrap.wrap(text, WRAP) or [""]
        if len(wrapped) > 2:
            wrapped = [wrapped[0], wrapped[1][: WRAP - 1] + "…"]
        kind = str(step.get("type"))
        self.drawing.boxes.append(
            Box(
                cx - BOX_W / 2,
                y,
                BOX_W,
                BOX_H,
                step_id,
                kind,
                wrapped,
                self.counts.get(step_id, ""),
                f"{step_id} ({kind}): {text}",
            )
        )
        ways = lanes(step)
        bottom = y + BOX_H
        if not ways:
            return bottom, kind != "exit"
        width, height = _step_size(step)
        join = y + height
        left = cx - width / 2 + (width - self._lanes_width(ways)) / 2
        split_y = bottom + GAP / 2
        self.drawing.edges.append(Edge(f"{cx},{bottom} {cx},{split_y}", arrow=False))
        any_through = False
        for key, label, items in ways:
            lane_w = _list_size(items)[0]
            lane_cx = left + lane_w / 2
            top = bottom + GAP + LABEL_H
            self.drawing.edges.append(
                Edge(f"{cx},{split_y} {lane_cx},{split_y} {lane_cx},{top}", arrow=bool(items))
            )
            self.drawing.labels.append(
                Label(lane_cx, bottom + GAP + 12, label, self.lane_counts.get((step_id, key), ""))
            )
            end, through = self.column(items, lane_cx, top) if items else (top, True)
            if through:
                any_through = True
                self.drawing.edges.append(
                    Edge(f"{lane_cx},{end} {lane_cx},{join} {cx},{join}", arrow=False)
                )
            left += lane_w + LANE_GAP
        return join, any_through

    @staticmethod
    def _lanes_width(ways: list[tuple[str, str, list[Step]]]) -> float:
        return sum(_list_size(items)[0] for _, _, items in ways) + LANE_GAP * (len(ways) - 1)


def flow_drawing(
    steps: Sequence[Step],
    *,
    heading: str = "",
    counts: Mapping[str, str] | None = None,
    lane_counts: Mapping[tuple[str, str], str] | None = None,
    end_count: str = "",
    campaign_names: Mapping[str, str] | None = None,
) -> Drawing:
    """Boxes, lines and labels for a step tree, with the given count text per step id and
    per (step id, list key) and on the end node."""
    width, _ = _list_size(steps)
    drawing = Drawing(width + 2 * MARGIN, 0, heading)
    painter = _Painter(drawing, counts or {}, lane_counts or {}, campaign_names or {})
    cx = MARGIN + width / 2
    top = MARGIN + HEAD_H
    bottom, through = painter.column(steps, cx, top)
    if through:
        y = bottom + GAP if steps else top
        if steps:
            drawing.edges.append(Edge(f"{cx},{bottom} {cx},{y}"))
        drawing.boxes.append(
            Box(cx - BOX_W / 4, y, BOX_W / 2, END_H, "end", "end", ["end"], end_count, "end")
        )
        bottom = y + END_H
    drawing.height = bottom + MARGIN
    return drawing


def flow_svg(steps: Sequence[Step], **options: Any) -> SafeString:
    """The diagram as an inline <svg> element (see flow_drawing for the options)."""
    drawing = flow_drawing(steps, **options)
    html = render_to_string("admin/journeys/insight/diagram.svg", {"d": drawing})
    return SafeString(html)
