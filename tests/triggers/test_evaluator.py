"""The evaluator: snapshots in a constant number of queries per batch, firings recorded once,
re-entry policies, actions run after commit with their errors recorded."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Contact, Event
from segments.models import Segment, SegmentMembership
from tests.factories import ConsentFactory, ContactFactory, EventFactory
from tests.triggers.helpers import make_rule
from triggers.compiler import needs_of
from triggers.models import TriggerFiring
from triggers.services.evaluation import contacts_evaluate
from triggers.services.firings import firings_run
from triggers.services.sweep import triggers_sweep
from triggers.snapshots import snapshots_build

pytestmark = pytest.mark.django_db


def _browser(views: int = 3, orders: int = 0) -> Contact:
    contact = ContactFactory.create()
    for _ in range(views):
        EventFactory.create(contact=contact, type="product_viewed")
    for _ in range(orders):
        EventFactory.create(contact=contact, type="order_completed")
    return contact


def test_snapshot_queries_do_not_grow_with_the_batch() -> None:
    segment = Segment.objects.create(name="VIP", slug="vip")
    rule = make_rule(
        conditions=[
            {
                "id": "event_count",
                "event": "product_viewed",
                "count": 3,
                "hours": 24,
                "where": [{"property": "category", "operator": "equals", "value": "kitchen"}],
            },
            {"id": "in_segment", "segment": "vip"},
            {"id": "consent", "channel": "email"},
            {"id": "attribute", "attribute": "plan", "operator": "equals", "value": "pro"},
        ]
    )
    needs = needs_of([rule.snapshot()])

    def queries_for(n: int) -> int:
        contacts = [_browser(views=1) for _ in range(n)]
        for contact in contacts:
            SegmentMembership.objects.create(segment=segment, contact=contact)
            ConsentFactory.create(contact=contact)
        with CaptureQueriesContext(connection) as ctx:
            snapshots_build(contact_ids=[c.pk for c in contacts], needs=needs, now=timezone.now())
        return len(ctx.captured_queries)

    assert queries_for(3) == queries_for(40) == 4


def test_a_browser_without_an_order_fires_and_the_action_runs() -> None:
    make_rule()
    contact = _browser(views=3)
    result = contacts_evaluate(contact_ids=[contact.pk], source="events")
    [firing] = TriggerFiring.objects.all()
    assert result.fired == 1 and firing.contact_id == contact.pk
    firings_run(firing_ids=[firing.pk])
    firing.refresh_from_db()
    contact.refresh_from_db()
    assert firing.status == TriggerFiring.Status.DONE
    assert contact.attributes["nudged"] == "yes"


def test_an_order_in_the_window_prevents_the_firing() -> None:
    make_rule()
    contact = _browser(views=5, orders=1)
    assert contacts_evaluate(contact_ids=[contact.pk], source="events").fired == 0


def test_evaluating_twice_records_one_firing() -> None:
    make_rule()
    contact = _browser()
    contacts_evaluate(contact_ids=[contact.pk], source="events")
    again = contacts_evaluate(contact_ids=[contact.pk], source="events")
    assert again.matched == 1 and again.fired == 0
    assert TriggerFiring.objects.count() == 1


def test_once_per_days_fires_again_only_after_the_cooldown() -> None:
    make_rule(reentry="once_per_days", reentry_days=7)
    contact = _browser()
    now = timezone.now()
    contacts_evaluate(contact_ids=[contact.pk], source="events", now=now)
    assert (
        contacts_evaluate(
            contact_ids=[contact.pk], source="events", now=now + dt.timedelta(days=6)
        ).fired
        == 0
    )
    Event.objects.filter(contact=contact).update(occurred_at=now + dt.timedelta(days=8))
    later = contacts_evaluate(
        contact_ids=[contact.pk], source="events", now=now + dt.timedelta(days=8, minutes=1)
    )
    assert later.fired == 1
    assert TriggerFiring.objects.filter(contact=contact).count() == 2


def test_once_ever_never_fires_twice() -> None:
    make_rule(reentry="once_ever")
    contact = _browser()
    now = timezone.now()
    contacts_evaluate(contact_ids=[contact.pk], source="events", now=now)
    Event.objects.filter(contact=contact).update(occurred_at=now + dt.timedelta(days=400))
    assert (
        contacts_evaluate(
            contact_ids=[contact.pk], source="events", now=now + dt.timedelta(days=400, minutes=1)
        ).fired
        == 0
    )
    assert TriggerFiring.objects.get().occurrence_key == "once"


def test_every_time_fires_once_per_new_activity() -> None:
    make_rule(reentry="every_time")
    contact = _browser()
    Contact.objects.filter(pk=contact.pk).update(last_activity_at=timezone.now())
    contacts_evaluate(contact_ids=[contact.pk], source="events")
    contacts_evaluate(contact_ids=[contact.pk], source="events")
    assert TriggerFiring.objects.count() == 1
    Contact.objects.filter(pk=contact.pk).update(
        last_activity_at=timezone.now() + dt.timedelta(seconds=5)
    )
    contacts_evaluate(contact_ids=[contact.pk], source="events")
    assert TriggerFiring.objects.count() == 2


def test_dormancy_sweep_only_snapshots_contacts_that_can_match() -> None:
    make_rule("win-back", conditions=[{"id": "dormancy", "days": 60}], reentry_days=60)
    old = timezone.now() - dt.timedelta(days=61)
    dormant = ContactFactory.create(last_activity_at=old)
    ContactFactory.create(last_activity_at=timezone.now() - dt.timedelta(days=3))
    # Created long ago with no events: editing or creating a contact is not activity.
    ContactFactory.create(created_at=old, last_activity_at=None)
    results = triggers_sweep()
    assert results["win-back"].evaluated == 1
    assert list(TriggerFiring.objects.values_list("contact_id", flat=True)) == [dormant.pk]


def test_an_action_error_is_recorded_on_the_firing() -> None:
    make_rule(actions=[{"id": "webhook", "url": "http://127.0.0.1:9/hook"}])
    contact = _browser()
    result = contacts_evaluate(contact_ids=[contact.pk], source="events")
    [firing] = firings_run(firing_ids=result.firing_ids)
    assert firing.status == TriggerFiring.Status.FAILED
    assert firing.error.startswith("actions[0] (webhook):")


def test_five_thousand_contacts_are_evaluated_in_one_process() -> None:
    make_rule("win-back", conditions=[{"id": "dormancy", "days": 60}], reentry_days=60)
    old = timezone.now() - dt.timedelta(days=90)
    Contact.objects.bulk_create(
        [
            Contact(email=f"bulk{i}@example.com", last_activity_at=old if i % 2 else None)
            for i in range(5000)
        ]
    )
    ids = list(Contact.objects.values_list("id", flat=True))
    result = contacts_evaluate(contact_ids=ids, source="sweep")
    assert result.evaluated == 5000
    assert result.fired == 2500
