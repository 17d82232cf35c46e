"""The trigger action start_journey: a rule's match enrolls the contact in a journey."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from crm.services.contact_input import contact_input_parse
from crm.services.event_input import EventInput
from crm.services.events import events_ingest
from journeys.models import Enrollment
from tests.journeys.test_entry import make_journey
from tests.triggers.helpers import make_rule
from triggers.models import TriggerFiring, TriggerRule
from triggers.services.evaluation import pending_evaluate
from triggers.services.rules import ruleset_forget


@pytest.fixture(autouse=True)
def _fresh_rules(settings: Any) -> Iterator[None]:
    settings.TRIGGER_RULES_CHECK_SECONDS = 0
    ruleset_forget()
    yield
    ruleset_forget()


def _view(contact: Any, n: int, cart: str) -> None:
    # Minutes apart: an every_time rule fires once per new activity time of the contact.
    events_ingest(
        [
            EventInput(
                client_id=f"view-{cart}-{n}",
                type="product_viewed",
                occurred_at=timezone.now() - dt.timedelta(minutes=10 - n),
                contact=contact,
                properties={"cart_id": cart, "product_id": f"SKU-{n}"},
            )
        ],
        source="api",
    )


@pytest.mark.django_db(transaction=True)
def test_a_rule_that_fires_enrolls_the_contact_keyed_on_the_entry_events_cart() -> None:
    make_journey("browse-follow-up", reentry={"mode": "once_per_key", "key": "cart_id"})
    make_rule(
        conditions=[{"id": "event_count", "event": "product_viewed", "count": 2, "hours": 24}],
        actions=[{"id": "start_journey", "journey": "browse-follow-up"}],
        reentry="every_time",
    )
    contact, errors = contact_input_parse({"email": "zoe@example.com"})
    assert contact is not None and not errors
    _view(contact, 1, "cart-7")
    _view(contact, 2, "cart-8")
    # Later, but of a type the rule's conditions do not name: not the entry event.
    events_ingest(
        [
            EventInput(
                client_id="newsletter",
                type="email_opened",
                occurred_at=timezone.now() - dt.timedelta(minutes=1),
                contact=contact,
                properties={"cart_id": "not-a-cart"},
            )
        ],
        source="api",
    )
    pending_evaluate()
    firing = TriggerFiring.objects.get()
    assert firing.status == TriggerFiring.Status.DONE, firing.error
    enrollment = Enrollment.objects.get()
    assert enrollment.journey.slug == "browse-follow-up"
    assert enrollment.entry_key == "cart-8"
    assert enrollment.entry_properties == {"cart_id": "cart-8", "product_id": "SKU-2"}
    assert enrollment.step_id == "cool-off"
    assert firing.outcome["actions"] == [
        {
            "id": "start_journey",
            "journey": "browse-follow-up",
            "enrollment_id": enrollment.pk,
            "skipped": "",
        }
    ]


@pytest.mark.django_db(transaction=True)
def test_a_contact_already_in_the_journey_is_reported_as_skipped() -> None:
    make_journey("browse-follow-up")
    make_rule(
        conditions=[{"id": "event_count", "event": "product_viewed", "count": 1, "hours": 24}],
        actions=[{"id": "start_journey", "journey": "browse-follow-up"}],
        reentry="every_time",
    )
    contact, _ = contact_input_parse({"email": "zoe@example.com"})
    assert contact is not None
    _view(contact, 1, "cart-7")
    pending_evaluate()
    _view(contact, 2, "cart-7")
    pending_evaluate()
    outcomes = [f.outcome["actions"][0] for f in TriggerFiring.objects.order_by("fired_at", "pk")]
    assert [o["skipped"] for o in outcomes] == [
        "",
        "re-entry policy (in the journey now or entered before)",
    ]
    assert outcomes[1]["enrollment_id"] is None
    assert Enrollment.objects.count() == 1


RULES_YAML = """\
rules:
- name: Browse
  slug: browse
  conditions: [{id: event_count, event: product_viewed, count: 3, hours: 24}]
  actions: [{id: start_journey, journey: %s}]
  reentry: once_ever
"""


@pytest.mark.django_db
def test_rule_import_accepts_start_journey(tmp_path: Path) -> None:
    make_journey("browse-follow-up")
    target = tmp_path / "rules.yaml"
    target.write_text(RULES_YAML % "browse-follow-up")
    call_command("triggers", "import", str(target), stdout=StringIO())
    assert TriggerRule.objects.get().actions == [
        {"id": "start_journey", "journey": "browse-follow-up"}
    ]


@pytest.mark.django_db
def test_rule_import_rejects_an_unknown_journey_naming_its_path(tmp_path: Path) -> None:
    make_journey("browse-follow-up")
    target = tmp_path / "rules.yaml"
    target.write_text(RULES_YAML % "no-such-journey")
    err = StringIO()
    with pytest.raises(CommandError, match="nothing imported"):
        call_command("triggers", "import", str(target), stdout=StringIO(), stderr=err)
    assert (
        "rules[0] (browse): actions[0].journey: no journey with the slug 'no-such-journey'."
        in err.getvalue()
    )
    assert not TriggerRule.objects.exists()


RULE_FIELDS = {
    "name": "Browse",
    "slug": "browse",
    "enabled": "on",
    "description": "",
    "priority": "0",
    "match_mode": "all",
    "audience_segment": "",
    "active_from_0": "",
    "active_from_1": "",
    "active_until_0": "",
    "active_until_1": "",
    "reentry": "once_ever",
    "reentry_days": "",
    "conditions-TOTAL": "1",
    "conditions-0-type": "event_count",
    "conditions-0-event": "product_viewed",
    "conditions-0-count": "3",
    "conditions-0-hours": "24",
    "conditions-0-where": "",
    "actions-TOTAL": "1",
    "actions-0-type": "start_journey",
}


@pytest.mark.django_db
def test_the_rule_editor_shows_an_unknown_journey_next_to_its_field(marketer_client: Any) -> None:
    make_journey("browse-follow-up")
    response = marketer_client.post(
        "/admin/triggers/triggerrule/add/", {**RULE_FIELDS, "actions-0-journey": "nope"}
    )
    assert response.status_code == 200
    assert "no journey with the slug &#x27;nope&#x27;." in response.content.decode()
    assert not TriggerRule.objects.exists()
    saved = marketer_client.post(
        "/admin/triggers/triggerrule/add/",
        {**RULE_FIELDS, "actions-0-journey": "browse-follow-up"},
    )
    assert saved.status_code == 302
    assert TriggerRule.objects.get().actions == [
        {"id": "start_journey", "journey": "browse-follow-up"}
    ]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_marketer_picks_start_journey_in_the_rule_editor(live_server: Any, page: Any) -> None:
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from playwright.sync_api import expect

    make_journey("browse-follow-up")
    user = User.objects.create_user("mia", "mia@example.com", "correct-horse-42", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    add_url = "/admin/triggers/triggerrule/add/"
    page.goto(f"{live_server.url}/admin/login/?next={add_url}")
    page.fill("#id_username", "mia")
    page.fill("#id_password", "correct-horse-42")
    page.click("input[type=submit]")
    page.fill("#id_name", "Looked three times")
    page.fill("#id_slug", "looked-three-times")
    page.fill("#id_reentry_days", "7")
    page.click("#conditions-editor button.rule-add")
    page.select_option("#id_conditions-0-type", "event_count")
    page.fill("#id_conditions-0-event", "product_viewed")
    page.fill("#id_conditions-0-count", "3")
    page.fill("#id_conditions-0-hours", "24")
    page.click("#actions-editor button.rule-add")
    page.select_option("#id_actions-0-type", "start_journey")
    page.fill("#id_actions-0-journey", "no-such-journey")
    page.click("input[name=_save]")
    error = page.locator("#actions-editor", has_text="no journey with the slug 'no-such-journey'.")
    expect(error).to_be_visible()
    screens = Path(settings.BASE_DIR) / "var" / "screens"
    screens.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screens / "start-journey-error.png"), full_page=True)
    page.fill("#id_actions-0-journey", "browse-follow-up")
    page.click("input[name=_save]")
    page.wait_for_selector("#result_list")
    assert TriggerRule.objects.get().actions == [
        {"id": "start_journey", "journey": "browse-follow-up"}
    ]
