"""The segment admin: the builder's forms, errors per condition path, the live preview, the
warnings and the size chart, for a marketer who is not a superuser."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from segments.compiler.forms import CONDITION_FORMS
from segments.models import Segment, SegmentSizeSnapshot
from segments.services import segment_refresh
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

FRANCE = {"op": "and", "conditions": [{"type": "country", "operator": "in", "countries": ["FR"]}]}
ADD_URL = "/admin/segments/segment/add/"


@pytest.fixture
def marketer(client: Client) -> Client:
    user = User.objects.create_user("mia", "mia@example.com", "pw-not-used", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    client.force_login(user)
    return client


def form_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "France",
        "slug": "france",
        "description": "",
        "definition": json.dumps(FRANCE),
        "min_size": "100",
        "is_active": "on",
    }
    data.update(overrides)
    return data


def test_a_marketer_creates_a_segment(marketer: Client) -> None:
    response = marketer.post(ADD_URL, form_data())
    assert response.status_code == 302
    assert Segment.objects.get(slug="france").definition == FRANCE


def test_staff_without_segment_permissions_cannot_open_the_builder(client: Client) -> None:
    user = User.objects.create_user("sam", "sam@example.com", "pw-not-used", is_staff=True)
    client.force_login(user)
    assert client.get(ADD_URL).status_code == 403


def test_errors_are_shown_per_condition_path(marketer: Client) -> None:
    definition = {
        "op": "and",
        "conditions": [
            {"type": "country", "countries": ["FR"]},
            {
                "type": "behaviour",
                "event": "product_viewed",
                "operator": "at_least",
                "count": 3,
                "days": -1,
            },
            {"type": "lifecycle", "stages": ["sleepy"]},
        ],
    }
    response = marketer.post(ADD_URL, form_data(definition=json.dumps(definition)))
    assert response.status_code == 200
    body = response.content.decode()
    assert "conditions[1].days: must be a positive integer" in body
    assert "conditions[2].stages: item 0: &#x27;sleepy&#x27; is not a stage" in body
    assert not Segment.objects.exists()


def test_a_cycle_is_shown_as_an_error(marketer: Client) -> None:
    Segment.objects.create(
        name="B",
        slug="b",
        definition={
            "op": "and",
            "conditions": [{"type": "segment", "segment": "a", "member": True}],
        },
    )
    a = Segment.objects.create(name="A", slug="a")
    definition = {"op": "and", "conditions": [{"type": "segment", "segment": "b", "member": True}]}
    response = marketer.post(
        f"/admin/segments/segment/{a.pk}/change/",
        form_data(name="A", slug="a", definition=json.dumps(definition)),
    )
    assert "segment memberships form a cycle: a → b → a" in response.content.decode()


def test_the_builder_offers_a_form_for_every_condition_type(marketer: Client) -> None:
    body = marketer.get(ADD_URL).content.decode()
    for kind in CONDITION_FORMS:
        assert f'data-type="{kind}"' in body
    assert 'name="builder-behaviour-days"' in body


def test_the_preview_shows_the_size_now_and_a_sample(marketer: Client) -> None:
    for index in range(25):
        ContactFactory.create(country="FR", first_name=f"P{index}")
    ContactFactory.create(country="DE")
    response = marketer.post(
        reverse("admin:segments_segment_preview"), {"definition": json.dumps(FRANCE)}
    )
    data = response.json()
    assert response.status_code == 200
    assert data["size"] == 25
    assert len(data["sample"]) == 20
    assert data["in_words"] == "country is one of FR"


def test_the_preview_names_errors_by_path(marketer: Client) -> None:
    definition = {
        "op": "and",
        "conditions": [
            {"type": "recency", "of": "purchase", "operator": "more_than", "days": "soon"}
        ],
    }
    response = marketer.post(
        reverse("admin:segments_segment_preview"), {"definition": json.dumps(definition)}
    )
    assert response.status_code == 400
    assert response.json() == {"errors": ["conditions[0].days: must be a positive integer"]}


def test_the_change_page_shows_warnings_members_escaped_and_the_size_chart(
    marketer: Client,
) -> None:
    ContactFactory.create(country="FR", first_name="<script>alert(1)</script>")
    segment = Segment.objects.create(name="France", slug="france", definition=FRANCE, min_size=100)
    segment_refresh(segment=segment)
    today = timezone.now().date()
    SegmentSizeSnapshot.objects.create(segment=segment, date=today - dt.timedelta(days=2), size=7)
    body = marketer.get(f"/admin/segments/segment/{segment.pk}/change/").content.decode()
    assert "too small to act on: 1 members, below the minimum of 100" in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<script>alert(1)</script>" not in body
    assert '<svg class="segment-size-chart"' in body
    assert f"<title>{today.isoformat()}: 1</title>" in body
    assert "country is one of FR" in body


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_builder_adds_a_condition_and_the_preview_counts_it(
    live_server: Any, page: Any
) -> None:
    User.objects.create_superuser("ada", "ada@example.com", "correct-horse-42")
    ContactFactory.create(country="FR", first_name="<b>Zoé</b>")
    ContactFactory.create(country="DE")
    page.goto(f"{live_server.url}/admin/login/?next={ADD_URL}")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "correct-horse-42")
    page.click("input[type=submit]")
    page.fill("#id_name", "France")
    page.select_option("#builder-type", "country")
    page.fill("#id_builder-country-countries", "fr")
    page.click("#builder-add")
    definition = json.loads(page.input_value("#id_definition"))
    assert definition == {
        "op": "and",
        "conditions": [{"type": "country", "operator": "in", "countries": ["fr"]}],
    }
    page.click("#preview-button")
    page.wait_for_selector("#preview-sample li")
    assert page.inner_text("#preview-size").startswith("1 contacts match now")
    # The name is shown as text, not markup.
    assert page.inner_text("#preview-sample").startswith("<b>Zoé</b> ")
    assert page.locator("#preview-sample b").count() == 0
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")
    assert Segment.objects.get(slug="france").definition["conditions"] == [
        {"type": "country", "operator": "in", "countries": ["FR"]}
    ]
