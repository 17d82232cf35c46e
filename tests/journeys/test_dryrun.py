"""The dry run: "if these contacts entered now, this many would take each path", walked by
the engine's own choices on real contacts and events, with nothing written or sent."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from crm.models import Contact
from journeys.dryrun import contacts_pick, dry_run
from journeys.models import Enrollment, Journey, StepRun
from journeys.services import journey_save
from segments.models import Segment, SegmentMembership
from tests.factories import ContactFactory, EventFactory
from tests.journeys.helpers import example, make_example_campaigns

pytestmark = pytest.mark.django_db


def _journey(**changes: Any) -> Journey:
    make_example_campaigns()
    data = example()
    data.update(changes)
    return journey_save(data, via="test").journey


def _people() -> tuple[list[Contact], list[Contact]]:
    """Three browsers who did not buy, two who bought an hour ago."""
    browsers = [ContactFactory.create() for _ in range(3)]
    buyers = [ContactFactory.create() for _ in range(2)]
    for buyer in buyers:
        EventFactory.create(
            contact=buyer,
            type="order_completed",
            occurred_at=timezone.now() - dt.timedelta(hours=1),
        )
    return browsers, buyers


def _segment(contacts: list[Contact]) -> Segment:
    segment = Segment.objects.create(name="Browsers", slug="browsers", definition={})
    SegmentMembership.objects.bulk_create(
        SegmentMembership(segment=segment, contact=c) for c in contacts
    )
    return segment


def test_each_path_counts_the_contacts_the_branch_sends_down_it() -> None:
    journey = _journey()
    browsers, buyers = _people()
    picked = contacts_pick(segment=_segment([*browsers, *buyers]))
    result = dry_run(journey, picked.contact_ids, now=timezone.now())
    assert result.contacts == 5
    assert result.reached == {
        "cool-off": 5,
        "bought": 5,
        "email-1": 3,
        "wait-day": 3,
        "sms-1": 3,
        "done": 2,
    }
    assert result.lanes == {("bought", "then"): 3, ("bought", "else"): 2}
    assert result.completed == 3
    # Nothing was written.
    assert Enrollment.objects.count() == 0 and StepRun.objects.count() == 0


def test_since_entry_counts_nothing_before_now() -> None:
    data = example()
    data["steps"][1]["since_entry"] = True
    make_example_campaigns()
    journey = journey_save(data, via="test").journey
    browsers, buyers = _people()
    result = dry_run(journey, [c.pk for c in (*browsers, *buyers)], now=timezone.now())
    # Entering now, nobody has bought since entry: all five go "then".
    assert result.lanes == {("bought", "then"): 5}


def test_a_split_and_a_wait_for_follow_the_engine_and_the_timeout() -> None:
    make_example_campaigns()
    data = example()
    data["steps"] = [
        {
            "id": "ab",
            "type": "split",
            "holdout": 10,
            "arms": [
                {
                    "weight": 1,
                    "steps": [{"id": "mail", "type": "send", "campaign": "win-back-email"}],
                },
                {"weight": 1, "steps": []},
            ],
        },
        {
            "id": "cart",
            "type": "wait_for",
            "event": "cart_updated",
            "hours": 2,
            "matched": [{"id": "stop", "type": "exit"}],
            "timed_out": [],
        },
    ]
    journey = journey_save(data, via="test").journey
    contacts = [ContactFactory.create() for _ in range(40)]
    result = dry_run(journey, [c.pk for c in contacts], now=timezone.now())
    lanes = {key: n for (step, key), n in result.lanes.items() if step == "ab"}
    assert sum(lanes.values()) == 40 and set(lanes) <= {"arms[0]", "arms[1]", "holdout"}
    assert result.reached["mail"] == lanes.get("arms[0]", 0)
    assert result.lanes[("cart", "timed_out")] == 40
    assert "stop" not in result.reached and result.completed == 40


def test_pasted_ids_and_emails_are_found_and_the_unknown_named() -> None:
    browsers, _ = _people()
    erased = ContactFactory.create(is_erased=True)
    text = f"{browsers[0].pk}, {str(browsers[1].email).upper()}\nnobody@example.com {erased.pk}"
    picked = contacts_pick(text=text)
    assert picked.contact_ids == sorted([browsers[0].pk, browsers[1].pk])
    assert picked.unknown == ["nobody@example.com", str(erased.pk)]


def test_a_segment_is_capped_and_the_page_shows_the_counts_per_path(
    marketer_client: Client,
) -> None:
    journey = _journey()
    browsers, buyers = _people()
    segment = _segment([*browsers, *buyers])
    picked = contacts_pick(segment=segment, cap=2)
    assert (len(picked.contact_ids), picked.asked) == (2, 5)
    url = f"/admin/journeys/journey/{journey.pk}/dry-run/?segment={segment.pk}&contacts="
    page = marketer_client.get(url).content.decode()
    assert "5 contacts walked through v1" in page
    assert "would reach: 3" in page and "would complete: 3" in page
    assert "3 would go" in page and "2 would go" in page
    assert "as if the event never came" in page


def test_the_dry_run_page_asks_for_contacts(marketer_client: Client) -> None:
    journey = _journey()
    page = marketer_client.get(f"/admin/journeys/journey/{journey.pk}/dry-run/?contacts=")
    assert "Pick a segment or paste contacts." in page.content.decode()


def test_the_dry_run_in_the_browser(live_server: Any, page: Any, settings: Any) -> None:
    from django.contrib.auth.models import Group, User

    journey = _journey()
    browsers, buyers = _people()
    user = User.objects.create_user("mia", "mia@example.com", "correct-horse-42", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    url = f"/admin/journeys/journey/{journey.pk}/dry-run/"
    page.goto(f"{live_server.url}/admin/login/?next={url}")
    page.fill("#id_username", "mia")
    page.fill("#id_password", "correct-horse-42")
    page.click("input[type=submit]")
    emails = " ".join(str(c.email) for c in (*browsers, *buyers))
    page.fill("#id_contacts", emails)
    page.click("#dryrun-form input[type=submit]")
    page.wait_for_selector("#dryrun-result svg.journey-flow")
    assert "5 contacts walked through v1" in page.inner_text("#dryrun-result h2")
    screens = Path(settings.BASE_DIR) / "var" / "screens"
    screens.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screens / "journey-dry-run.png"), full_page=True)


def test_the_dry_run_takes_the_same_queries_for_few_and_many_contacts() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    journey = _journey()
    few = [ContactFactory.create() for _ in range(3)]
    many = [*few, *(ContactFactory.create() for _ in range(30))]
    with CaptureQueriesContext(connection) as small:
        dry_run(journey, [c.pk for c in few], now=timezone.now())
    with CaptureQueriesContext(connection) as large:
        assert dry_run(journey, [c.pk for c in many], now=timezone.now()).completed == 33
    assert len(small) == len(large)
