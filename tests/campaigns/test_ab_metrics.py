"""Per-arm A/B metrics aggregated in SQL: unique responses, conversions within the attribution
window, last touch across campaigns, the holdout measured from its assignment time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.abtest.metrics import ArmMetrics, campaign_metrics
from campaigns.models import Campaign, Response
from tests.campaigns.ab_helpers import T0, ab_campaign, convert, deliver, respond
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db
DAY = dt.timedelta(days=1)
K = Response.Kind


def arms_of(campaign: Campaign) -> dict[str, ArmMetrics]:
    return {arm.name: arm for arm in campaign_metrics(campaign=campaign).arms}


def test_responses_count_once_per_delivery_in_their_arm() -> None:
    campaign = ab_campaign()
    a1 = deliver(campaign, "A", delivered=True)
    deliver(campaign, "A", delivered=True)
    b1 = deliver(campaign, "B", delivered=True)
    for _ in range(3):
        respond(a1, K.OPENED)
    respond(a1, K.CLICKED)
    respond(a1, K.CLICKED)
    respond(b1, K.OPENED)
    respond(b1, K.UNSUBSCRIBED)
    respond(b1, K.COMPLAINED)
    b2 = deliver(campaign, "B")
    respond(b2, K.BOUNCED_HARD)

    arms = arms_of(campaign)

    a, b = arms["A"], arms["B"]
    assert (a.assigned, a.sent, a.delivered, a.opened, a.clicked) == (2, 2, 2, 1, 1)
    assert (b.assigned, b.sent, b.delivered, b.opened, b.clicked) == (2, 2, 1, 1, 0)
    assert (b.unsubscribed, b.complained, b.bounced) == (1, 1, 1)
    assert (a.unsubscribed, a.complained, a.bounced) == (0, 0, 0)


def test_a_goal_event_counts_only_inside_the_attribution_window() -> None:
    campaign = ab_campaign()  # window: 5 days after sent_at
    inside = deliver(campaign, "A")
    convert(inside.contact, at=T0 + 2 * DAY, value="30.00")
    convert(inside.contact, at=T0 + 3 * DAY, value="12.50")
    too_late = deliver(campaign, "A")
    convert(too_late.contact, at=T0 + 6 * DAY)
    before = deliver(campaign, "B")
    convert(before.contact, at=T0 - dt.timedelta(hours=1))
    other_goal = deliver(campaign, "B")
    other_goal.contact.events.create(type="product_viewed", occurred_at=T0 + DAY)

    arms = arms_of(campaign)

    assert arms["A"].conversions == 1
    assert arms["A"].revenue == Decimal("42.50")
    assert arms["B"].conversions == 0
    assert arms["B"].revenue == Decimal("0.00")


def test_last_touch_gives_the_conversion_to_the_later_campaign() -> None:
    first = ab_campaign()
    second = ab_campaign()
    person = ContactFactory.create()
    deliver(first, "A", contact=person, sent_at=T0)
    deliver(second, "B", contact=person, sent_at=T0 + DAY)
    convert(person, at=T0 + 2 * DAY, value="99.00")

    assert arms_of(first)["A"].conversions == 0
    second_b = arms_of(second)["B"]
    assert (second_b.conversions, second_b.revenue) == (1, Decimal("99.00"))


def test_a_conversion_before_the_later_campaign_still_belongs_to_the_first() -> None:
    first = ab_campaign()
    second = ab_campaign()
    person = ContactFactory.create()
    deliver(first, "A", contact=person, sent_at=T0)
    deliver(second, "A", contact=person, sent_at=T0 + 3 * DAY)
    convert(person, at=T0 + DAY)

    assert arms_of(first)["A"].conversions == 1
    assert arms_of(second)["A"].conversions == 0


def test_any_touch_counts_for_every_campaign_whose_window_holds_it() -> None:
    first = ab_campaign(attribution=Campaign.Attribution.ANY_TOUCH)
    second = ab_campaign()
    person = ContactFactory.create()
    deliver(first, "A", contact=person, sent_at=T0)
    deliver(second, "B", contact=person, sent_at=T0 + DAY)
    convert(person, at=T0 + 2 * DAY)

    assert arms_of(first)["A"].conversions == 1
    assert arms_of(second)["B"].conversions == 1


def test_a_message_held_back_is_no_touch_for_last_touch() -> None:
    first = ab_campaign()
    second = ab_campaign()
    person = ContactFactory.create()
    deliver(first, "A", contact=person, sent_at=T0)
    # Skipped for lack of consent in the other campaign: it never reached the person.
    deliver(second, "A", contact=person, sent_at=None, created_at=T0 + DAY)
    convert(person, at=T0 + 2 * DAY)

    assert arms_of(first)["A"].conversions == 1


def test_the_holdout_is_measured_from_its_assignment_time() -> None:
    campaign = ab_campaign(holdout=10)
    held = deliver(campaign, "holdout", created_at=T0)
    convert(held.contact, at=T0 + 4 * DAY, value="15.00")
    late = deliver(campaign, "holdout", created_at=T0)
    convert(late.contact, at=T0 + 5 * DAY + dt.timedelta(minutes=1))

    holdout = arms_of(campaign)["holdout"]

    assert (holdout.assigned, holdout.sent, holdout.conversions) == (2, 0, 1)
    assert holdout.revenue == Decimal("15.00")


def test_a_later_message_from_another_campaign_takes_the_holdout_conversion() -> None:
    campaign = ab_campaign(holdout=10)
    other = ab_campaign()
    person = ContactFactory.create()
    deliver(campaign, "holdout", contact=person, created_at=T0)
    deliver(other, "A", contact=person, sent_at=T0 + DAY)
    convert(person, at=T0 + 2 * DAY)

    assert arms_of(campaign)["holdout"].conversions == 0
    assert arms_of(other)["A"].conversions == 1


def test_the_winner_send_is_not_part_of_the_test() -> None:
    campaign = ab_campaign()
    deliver(campaign, "A")
    rest = deliver(campaign, "B", occurrence="winner")
    convert(rest.contact, at=T0 + DAY)
    respond(rest, K.CLICKED)

    arms = arms_of(campaign)

    assert arms["A"].assigned == 1
    assert (arms["B"].assigned, arms["B"].clicked, arms["B"].conversions) == (0, 0, 0)


def test_cumulative_conversions_count_each_delivery_once_on_its_first_day() -> None:
    campaign = ab_campaign()
    twice = deliver(campaign, "A")
    convert(twice.contact, at=T0 + DAY)
    convert(twice.contact, at=T0 + 2 * DAY)
    later = deliver(campaign, "A")
    convert(later.contact, at=T0 + 3 * DAY)
    b = deliver(campaign, "B")
    convert(b.contact, at=T0 + 2 * DAY)

    daily = campaign_metrics(campaign=campaign).daily

    assert [(day.isoformat(), counts) for day, counts in daily] == [
        ("2026-03-03", {"A": 1, "B": 0}),
        ("2026-03-04", {"A": 1, "B": 1}),
        ("2026-03-05", {"A": 2, "B": 1}),
    ]


def test_metrics_take_a_fixed_number_of_queries_whatever_the_size() -> None:
    campaign = ab_campaign(holdout=10)
    for index in range(30):
        row = deliver(campaign, "holdout" if index % 10 == 0 else "AB"[index % 2])
        respond(row, K.OPENED)
        convert(row.contact, at=T0 + DAY)

    with CaptureQueriesContext(connection) as queries:
        metrics = campaign_metrics(campaign=campaign)

    assert sum(arm.conversions for arm in metrics.arms) == 30
    assert len(queries) <= 4
