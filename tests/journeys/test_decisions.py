"""journeys/decisions.py: a branch decided by the rules engine on each enrollment's
snapshot (with each condition's verdict and values), since-entry windows per enrollment,
and splits that are deterministic per contact and follow the weights."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from django.utils import timezone

from journeys.decisions import HOLDOUT, Entrant, branch_decide, split_decide
from journeys.models import Enrollment, JourneyVersion
from journeys.services import journey_save
from tests.factories import ContactFactory, EventFactory
from tests.journeys.helpers import make_example_campaigns, with_steps

pytestmark = pytest.mark.django_db

BOUGHT = {
    "id": "bought",
    "type": "branch",
    "conditions": [{"id": "event_absent", "event": "order_completed", "hours": 24}],
    "then": [],
    "else": [],
}


@pytest.fixture
def version() -> JourneyVersion:
    make_example_campaigns()
    published = journey_save(with_steps(BOUGHT), via="test").published
    assert published is not None
    return published


def _enrol(version: JourneyVersion, contact_id: int, key: str, entered: dt.datetime) -> Entrant:
    row = Enrollment.objects.create(
        journey=version.journey,
        version=version,
        contact_id=contact_id,
        entry_key=key,
        entered_at=entered,
        step_id="bought",
    )
    return Entrant(row.pk, contact_id, entered)


def test_a_branch_goes_by_the_engine_and_says_why(version: JourneyVersion) -> None:
    now = timezone.now()
    buyer, browser = ContactFactory.create(), ContactFactory.create()
    EventFactory.create(
        contact=buyer, type="order_completed", occurred_at=now - dt.timedelta(hours=2)
    )
    entrants = [_enrol(version, c.pk, "", now - dt.timedelta(hours=5)) for c in (buyer, browser)]
    decisions = branch_decide(BOUGHT, entrants, now=now)
    assert decisions[entrants[0].enrollment_id].key == "else"
    assert decisions[entrants[1].enrollment_id].key == "then"
    verdict = decisions[entrants[0].enrollment_id].verdicts[0]
    assert verdict.description == "no order_completed in 24 hours"
    assert not verdict.holds
    assert verdict.values == {"order_completed events in the last 24 h": 1}
    outcome = decisions[entrants[1].enrollment_id].as_outcome()
    assert outcome["branch"] == "then" and outcome["conditions"][0]["holds"] is True


def test_since_entry_counts_each_enrollment_from_its_own_entry(version: JourneyVersion) -> None:
    now = timezone.now()
    contact = ContactFactory.create()
    EventFactory.create(
        contact=contact, type="order_completed", occurred_at=now - dt.timedelta(hours=3)
    )
    early = _enrol(version, contact.pk, "cart-1", now - dt.timedelta(hours=6))
    late = _enrol(version, contact.pk, "cart-2", now - dt.timedelta(hours=1))
    step = {**BOUGHT, "since_entry": True}
    decisions = branch_decide(step, [early, late], now=now)
    assert decisions[early.enrollment_id].key == "else"  # bought after this entry
    assert decisions[late.enrollment_id].key == "then"  # the order came before this entry
    assert decisions[late.enrollment_id].verdicts[0].values == {
        "order_completed events in the last 24 h since entry": 0
    }
    # Without since_entry both see the order.
    assert {d.key for d in branch_decide(BOUGHT, [early, late], now=now).values()} == {"else"}


def test_any_mode_and_a_gone_contact(version: JourneyVersion) -> None:
    now = timezone.now()
    contact = ContactFactory.create()
    step = {
        **BOUGHT,
        "match": "any",
        "conditions": [
            {"id": "event_count", "event": "product_viewed", "count": 1, "hours": 24},
            {"id": "event_absent", "event": "order_completed", "hours": 24},
        ],
    }
    entrant = _enrol(version, contact.pk, "", now)
    decision = branch_decide(step, [entrant], now=now)[entrant.enrollment_id]
    assert decision.key == "then"
    assert [v.holds for v in decision.verdicts] == [False, True]
    contact.is_erased = True
    contact.save(update_fields=["is_erased"])
    assert branch_decide(step, [entrant], now=now) == {}


def test_a_split_is_stable_per_contact_and_follows_the_weights() -> None:
    step = {
        "id": "ab",
        "type": "split",
        "holdout": 10,
        "arms": [{"weight": 75, "steps": []}, {"weight": 25, "steps": []}],
    }
    picks = Counter(split_decide(step, journey_id=1, contact_id=cid) for cid in range(4000))
    assert split_decide(step, journey_id=1, contact_id=7) == split_decide(
        step, journey_id=1, contact_id=7
    )
    assert 320 <= picks[HOLDOUT] <= 480
    assert 2500 <= picks["arms[0]"] <= 2900
    assert 800 <= picks["arms[1]"] <= 1000
    # Another journey draws independently.
    other = [split_decide(step, journey_id=2, contact_id=cid) for cid in range(200)]
    assert other != [split_decide(step, journey_id=1, contact_id=cid) for cid in range(200)]


def test_a_batch_of_mixed_contacts_each_gets_its_own_answer(version: JourneyVersion) -> None:
    """Contacts sharing the values the conditions read share one engine match; each still
    gets the answer its own values give."""
    now = timezone.now()
    step = {
        **BOUGHT,
        "match": "all",
        "conditions": [
            {"id": "event_count", "event": "product_viewed", "count": 2, "hours": 24},
            {"id": "event_absent", "event": "order_completed", "hours": 24},
        ],
    }
    expected: dict[int, str] = {}
    entrants = []
    for index in range(24):
        contact = ContactFactory.create()
        views, bought = index % 4, index % 3 == 0
        for _ in range(views):
            EventFactory.create(contact=contact, type="product_viewed", occurred_at=now)
        if bought:
            EventFactory.create(contact=contact, type="order_completed", occurred_at=now)
        entrant = _enrol(version, contact.pk, "", now)
        entrants.append(entrant)
        expected[entrant.enrollment_id] = "then" if views >= 2 and not bought else "else"
    decisions = branch_decide(step, entrants, now=now)
    assert {pk: d.key for pk, d in decisions.items()} == expected
    sample = decisions[entrants[7].enrollment_id]  # 3 views, no order
    assert [v.values for v in sample.verdicts] == [
        {"product_viewed events in the last 24 h": 3},
        {"order_completed events in the last 24 h": 0},
    ]
