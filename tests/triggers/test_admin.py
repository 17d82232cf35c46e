"""A marketer (not a superuser) edits rules in admin, sees errors per field, the history,
firings, "why" and a dry run."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from tests.factories import ContactFactory, EventFactory
from tests.triggers.helpers import make_rule, rule_data
from triggers.models import TriggerFiring, TriggerRule
from triggers.services.evaluation import contacts_evaluate

pytestmark = pytest.mark.django_db
ADD_URL = "/admin/triggers/triggerrule/add/"


@pytest.fixture
def marketer(client: Client) -> Client:
    user = User.objects.create_user("mia", "mia@example.com", "pw-not-used", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    client.force_login(user)
    return client


def form_data(**overrides: Any) -> dict[str, Any]:
    data = rule_data(**overrides)
    form = {key: value for key, value in data.items() if value is not None}
    form["conditions"] = json.dumps(data["conditions"])
    form["actions"] = json.dumps(data["actions"])
    form["enabled"] = "on" if data["enabled"] else ""
    form.update({"versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0"})
    return form


def test_a_marketer_creates_a_rule_and_its_first_version(marketer: Client) -> None:
    response = marketer.post(ADD_URL, form_data())
    assert response.status_code == 302, response.content.decode()[:3000]
    rule = TriggerRule.objects.get(slug="browse-abandonment")
    assert rule.version == 1
    assert rule.versions.get().edited_by.username == "mia"  # type: ignore[union-attr]


def test_an_invalid_condition_shows_its_path_and_saves_nothing(marketer: Client) -> None:
    bad = form_data(
        conditions=[{"id": "event_count", "event": "product_viewed", "count": 0, "hours": 24}]
    )
    response = marketer.post(ADD_URL, bad)
    assert response.status_code == 200
    assert "conditions[0].count:" in response.content.decode()
    assert not TriggerRule.objects.exists()


def test_the_change_page_lists_condition_types_and_the_history(marketer: Client) -> None:
    rule = make_rule()
    page = marketer.get(f"/admin/triggers/triggerrule/{rule.pk}/change/").content.decode()
    assert "event_count" in page and "at least {count} times" in page
    assert "version history" in page.lower()
    assert "firings per day" in page


def test_why_shows_each_condition_with_the_contacts_value(marketer: Client) -> None:
    rule = make_rule()
    contact = ContactFactory.create(first_name="<script>alert(1)</script>")
    EventFactory.create(contact=contact, type="product_viewed")
    page = marketer.get(
        f"/admin/triggers/triggerrule/{rule.pk}/why/", {"contact": str(contact.email)}
    ).content.decode()
    assert "the rule does not match now" in page
    assert "product_viewed at least 3 times in 24 hours" in page
    assert "= 1" in page  # one view so far
    assert "<script>alert(1)</script>" not in page


def test_dry_run_button_shows_who_would_fire_and_records_nothing(marketer: Client) -> None:
    rule = make_rule()
    contact = ContactFactory.create()
    for _ in range(3):
        EventFactory.create(contact=contact, type="product_viewed")
    page = marketer.get(f"/admin/triggers/triggerrule/{rule.pk}/dry-run/").content.decode()
    assert "1 contact(s) would fire now" in page
    assert not TriggerFiring.objects.exists()


def test_a_failed_firing_shows_its_error_in_the_list(marketer: Client) -> None:
    from triggers.services.firings import firings_run

    make_rule(actions=[{"id": "webhook", "url": "http://127.0.0.1:9/hook"}])
    contact = ContactFactory.create()
    for _ in range(3):
        EventFactory.create(contact=contact, type="product_viewed")
    firings_run(firing_ids=contacts_evaluate(contact_ids=[contact.pk], source="events").firing_ids)
    page = marketer.get("/admin/triggers/triggerfiring/").content.decode()
    assert "actions[0] (webhook)" in page
