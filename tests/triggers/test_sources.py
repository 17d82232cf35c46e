"""Evaluation is asked for by new events (through a real worker) and by segment changes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.utils import timezone

from crm.services.contact_input import contact_input_parse
from crm.services.event_input import EventInput
from crm.services.events import events_ingest
from segments.models import Segment
from segments.signals import membership_changed
from tests.factories import ContactFactory
from tests.triggers.helpers import make_rule
from tests.worker import celery_worker, wait_for
from triggers.models import TriggerFiring, TriggerPendingContact


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_third_product_view_fires_browse_abandonment_through_the_worker(tmp_path: Path) -> None:
    rule = make_rule()
    contact, errors = contact_input_parse({"email": "zoe@example.com"})
    assert contact is not None and not errors
    with celery_worker(tmp_path=tmp_path, queues="evaluation"):
        accepted: list[float] = []
        for n in range(3):
            accepted.append(time.monotonic())
            [result] = events_ingest(
                [
                    EventInput(
                        client_id=f"evt-{n}",
                        type="product_viewed",
                        occurred_at=timezone.now(),
                        contact=contact,
                        properties={"product_id": f"SKU-{n}"},
                    )
                ],
                source="api",
            )
        firing = wait_for(
            lambda: TriggerFiring.objects.filter(
                rule=rule, contact_id=result.contact_id, status=TriggerFiring.Status.DONE
            ).first(),
            timeout=90,
            what="the worker to fire the rule and run its action",
        )
        latency = time.monotonic() - accepted[-1]
    print(f"event-to-firing latency (cold worker): {latency:.2f}s")
    assert firing.outcome["actions"][0]["attribute"] == "nudged"
    assert TriggerFiring.objects.count() == 1
    # The goal is under a second at p95 on a warm worker; a cold test worker gets slack.
    assert latency < 30


@pytest.mark.django_db
def test_entering_a_segment_queues_the_contact_for_evaluation() -> None:
    vip = Segment.objects.create(name="VIP", slug="vip")
    make_rule(conditions=[{"id": "entered_segment", "segment": "vip", "hours": 24}])
    contact = ContactFactory.create()
    membership_changed.send(
        sender=Segment, segment_id=vip.pk, entered_ids=[contact.pk], exited_ids=[]
    )
    assert TriggerPendingContact.objects.filter(contact_id=contact.pk, source="segments").exists()


@pytest.mark.django_db
def test_entering_a_segment_no_enabled_rule_looks_at_queues_nothing() -> None:
    Segment.objects.create(name="VIP", slug="vip")
    newsletter = Segment.objects.create(name="Newsletter readers", slug="newsletter")
    make_rule(conditions=[{"id": "entered_segment", "segment": "vip", "hours": 24}])
    make_rule(
        slug="off",
        enabled=False,
        conditions=[{"id": "entered_segment", "segment": "newsletter", "hours": 24}],
    )
    contact = ContactFactory.create()
    membership_changed.send(
        sender=Segment, segment_id=newsletter.pk, entered_ids=[contact.pk], exited_ids=[]
    )
    assert not TriggerPendingContact.objects.exists()


@pytest.mark.django_db
def test_a_queued_segment_entry_fires_entered_segment() -> None:
    from segments.models import SegmentMembership
    from triggers.services.evaluation import contacts_queue, pending_evaluate

    segment = Segment.objects.create(name="VIP", slug="vip")
    rule = make_rule(conditions=[{"id": "entered_segment", "segment": "vip", "hours": 24}])
    contact = ContactFactory.create()
    SegmentMembership.objects.create(segment=segment, contact=contact)
    contacts_queue(contact_ids=[contact.pk], source="segments")
    assert pending_evaluate().fired == 1
    firing = TriggerFiring.objects.get(rule=rule)
    assert firing.source == "segments" and not TriggerPendingContact.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_draining_the_queue_runs_database_only_actions_at_once() -> None:
    from segments.models import SegmentMembership
    from triggers.services.evaluation import contacts_queue, pending_evaluate

    segment = Segment.objects.create(name="VIP", slug="vip")
    rule = make_rule(conditions=[{"id": "entered_segment", "segment": "vip", "hours": 24}])
    contact = ContactFactory.create()
    SegmentMembership.objects.create(segment=segment, contact=contact)
    contacts_queue(contact_ids=[contact.pk], source="segments")
    pending_evaluate()
    firing = TriggerFiring.objects.get(rule=rule)
    contact.refresh_from_db()
    assert firing.status == TriggerFiring.Status.DONE
    assert contact.attributes["nudged"] == "yes"


@pytest.mark.django_db(transaction=True)
def test_an_events_import_is_judged_whole_not_batch_by_batch(tmp_path: Path) -> None:
    """Ada's old visits come in the file's first batch of 500 rows and her visit of
    yesterday in the second: an evaluation between the two would find her dormant."""
    import datetime as dt

    from crm.models import Contact
    from crm.services.importing import import_events_file
    from tests.worker import tasks_eager

    make_rule(slug="win-back", conditions=[{"id": "dormancy", "days": 60}])
    now = timezone.now()

    def row(event_id: str, days_ago: float, email: str) -> str:
        moment = (now - dt.timedelta(days=days_ago)).isoformat()
        return f"{event_id},page_viewed,{moment},{email}"

    lines = ["id,type,occurred_at,email"]
    lines += [row(f"old-{i}", 90 - i, "ada@example.com") for i in range(3)]
    lines += [row(f"other-{i}", 1, f"reader{i}@example.com") for i in range(600)]
    lines.append(row("recent", 1, "ada@example.com"))
    path = tmp_path / "events.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with tasks_eager():  # the evaluation runs as soon as it is queued, as a fast worker would
        run = import_events_file(path=path)

    ada = Contact.objects.get(email="ada@example.com")
    assert run.rows_created == 604
    assert ada.last_activity_at is not None
    assert now - ada.last_activity_at < dt.timedelta(days=2)
    assert not TriggerFiring.objects.filter(rule__slug="win-back", contact=ada).exists()
