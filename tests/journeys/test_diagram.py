"""The flow diagram on the journey change page: a server-rendered SVG with each step's
description and counts, the ways out side by side, conversion, and escaped text."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from django.test import Client

from campaigns.models import Campaign
from journeys.services import journey_save
from journeys.svg import flow_svg
from tests.journeys.helpers import example, make_example_campaigns
from tests.journeys.insight_rows import rows

pytestmark = pytest.mark.django_db
SVG = re.compile(r"<svg [^>]*class=\"journey-flow\".*?</svg>", re.S)


def _svg(page: str) -> ElementTree.Element:
    match = SVG.search(page)
    assert match, "no diagram on the page"
    return ElementTree.fromstring(match.group(0))  # noqa: S314 (our own page)


def _texts(element: ElementTree.Element) -> list[str]:
    return ["".join(node.itertext()) for node in element.iter("{http://www.w3.org/2000/svg}text")]


def _boxes(element: ElementTree.Element) -> dict[str, list[str]]:
    ns = "{http://www.w3.org/2000/svg}"
    return {g.get("data-step", ""): _texts(g) for g in element.iter(f"{ns}g") if g.get("data-step")}


def test_the_change_page_draws_each_step_with_its_description_and_counts(
    marketer_client: Client,
) -> None:
    made = rows()
    page = marketer_client.get(f"/admin/journeys/journey/{made.journey.pk}/change/")
    svg = _svg(page.content.decode())
    boxes = _boxes(svg)
    assert list(boxes) == ["cool-off", "bought", "email-1", "ab", "sms-1", "done", "end"]
    assert "wait 240 minutes" in boxes["cool-off"]
    assert "entered 6 · waiting 1 · done 5" in boxes["cool-off"]
    assert "send browse-abandonment" in boxes["email-1"]
    assert "entered 4 · waiting 1 · done 2 · failed 1" in boxes["email-1"]
    assert "split at random 50:50, 20% held out" in boxes["ab"]
    assert "completed 1" in boxes["end"]
    texts = _texts(svg)
    assert "v1: converted 1 / enrolled 6 (16.7%)" in texts
    # The ways out, side by side, each with how many went.
    for label in ("then", "else", "A: weight 50", "B: weight 50", "holdout 20%"):
        assert label in texts
    assert "4 went" in texts and "1 went" in texts
    assert "1 in, 1 converted (p=0.16 vs holdout)" in texts


def test_branches_are_side_by_side() -> None:
    make_example_campaigns()
    version = journey_save(example(), via="test").journey.current_version
    assert version is not None
    steps = version.steps
    svg = ElementTree.fromstring(str(flow_svg(steps)))  # noqa: S314 (our own drawing)
    ns = "{http://www.w3.org/2000/svg}"
    x: dict[str, float] = {}
    y: dict[str, float] = {}
    for g in svg.iter(f"{ns}g"):
        rect = g.find(f"{ns}rect")
        if g.get("data-step") and rect is not None:
            x[g.get("data-step", "")] = float(rect.get("x", 0))
            y[g.get("data-step", "")] = float(rect.get("y", 0))
    assert y["email-1"] == y["done"] and x["email-1"] < x["done"]
    assert y["cool-off"] < y["bought"] < y["email-1"] < y["wait-day"] < y["sms-1"] < y["end"]


def test_a_hostile_campaign_name_and_attribute_value_are_escaped(marketer_client: Client) -> None:
    make_example_campaigns()
    Campaign.objects.filter(slug="browse-abandonment").update(
        name='<script>alert("x")</script> & co'
    )
    data: dict[str, Any] = example()
    data["steps"].insert(
        0,
        {
            "id": "tag",
            "type": "action",
            "action": "set_attribute",
            "attribute": "note",
            "value": "</text><script>evil()</script>",
        },
    )
    journey = journey_save(data, via="test").journey
    page = marketer_client.get(f"/admin/journeys/journey/{journey.pk}/change/").content.decode()
    assert "<script>alert" not in page and "<script>evil" not in page
    svg = _svg(page)  # still well-formed XML
    texts = " ".join(_texts(svg))
    assert 'send <script>alert("x")</script> & co' in texts
    assert "evil()" in texts


def test_the_diagram_in_the_browser_is_styled_and_readable(
    live_server: Any, page: Any, settings: Any
) -> None:
    from django.contrib.auth.models import Group, User

    made = rows()
    user = User.objects.create_user("mia", "mia@example.com", "correct-horse-42", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    url = f"/admin/journeys/journey/{made.journey.pk}/change/"
    page.goto(f"{live_server.url}/admin/login/?next={url}")
    page.fill("#id_username", "mia")
    page.fill("#id_password", "correct-horse-42")
    page.click("input[type=submit]")
    page.wait_for_selector("svg.journey-flow")
    # The stylesheet reached the SVG (the CSP refuses inline styles).
    fill = page.eval_on_selector(
        "svg.journey-flow .step-send .box", "e => getComputedStyle(e).fill"
    )
    assert fill == "rgb(238, 247, 238)"
    assert page.is_visible("button[name=_pause]")
    page.locator("svg.journey-flow").scroll_into_view_if_needed()
    screens = Path(settings.BASE_DIR) / "var" / "screens"
    screens.mkdir(parents=True, exist_ok=True)
    flow = page.locator("fieldset:has(svg.journey-flow)")
    flow.screenshot(path=str(screens / "journey-flow.png"))
    page.screenshot(path=str(screens / "journey-change-page.png"), full_page=True)
    # The pause button posts the change form (with its CSRF token) to the pause view.
    page.click("button[name=_pause]")
    page.wait_for_selector(".messagelist")
    assert "2 contact(s) held at their steps until resumed" in page.inner_text(".messagelist")
    assert page.is_visible("button[name=_resume]")
