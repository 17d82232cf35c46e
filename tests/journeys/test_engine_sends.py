"""Send steps go through dispatch and hold the contact until the delivery is final; quiet
hours defer the step, the fallback campaign reaches contacts the first cannot; network
actions run once, outside the round's transaction."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from campaigns.models import Campaign, Delivery
from campaigns.services.send import deliveries_send
from journeys.engine import claim_lease, enrollments_advance, enrollments_claim
from journeys.models import Enrollment, StepRun
from tests.campaigns.dispatch_helpers import campaign_for, grant
from tests.factories import ContactFactory
from tests.journeys.engine_helpers import T0, enrol, fresh, journey_of, ledger, tick

pytestmark = pytest.mark.django_db

MIN = dt.timedelta(minutes=1)
UTC = dt.UTC
NOTE = {"id": "after", "type": "action", "action": "set_attribute", "attribute": "a", "value": "1"}


def test_a_send_step_holds_the_contact_until_the_delivery_is_sent(outbox: Path) -> None:
    contact = ContactFactory.create()
    grant(contact, channel="email")
    campaign = campaign_for([], channel="email", kind="triggered")
    journey = journey_of({"id": "email-1", "type": "send", "campaign": campaign.slug}, NOTE)
    enrollment = enrol(journey, contact)
    report = tick(T0)
    delivery = Delivery.objects.get(contact=contact)
    assert delivery.occurrence == f"journey-{enrollment.pk}-email-1-0"
    assert delivery.status == Delivery.Status.QUEUED
    assert fresh(enrollment).step_id == "email-1" and report.states == {"holding a send": 1}
    [(step, status, outcome)] = ledger(enrollment)
    assert (step, status) == ("email-1", "running")
    assert outcome == {
        "campaign": campaign.slug,
        "channel": "email",
        "fallback": False,
        "delivery_id": delivery.pk,
    }
    tick(T0 + MIN)
    assert fresh(enrollment).step_id == "email-1"  # still queued: still held
    deliveries_send(delivery_ids=[delivery.pk], now=T0 + MIN)
    tick(T0 + 2 * MIN)
    assert fresh(enrollment).status == Enrollment.Status.COMPLETED
    assert ledger(enrollment)[0][1:] == ("done", {**outcome, "delivery_status": "sent"})
    assert len(list((outbox / "email").glob("*.eml"))) == 1


def test_an_sms_in_quiet_hours_holds_the_contact_at_the_send_until_it_goes(outbox: Path) -> None:
    contact = ContactFactory.create(phone="+12125550100", timezone="America/New_York")
    grant(contact, channel="sms")
    sms = campaign_for([], channel="sms", kind="triggered")
    journey = journey_of({"id": "sms-1", "type": "send", "campaign": sms.slug}, NOTE)
    night = dt.datetime(2026, 3, 8, 3, 0, tzinfo=UTC)  # 22:00 in New York
    eight = dt.datetime(2026, 3, 8, 12, 0, tzinfo=UTC)  # 08:00 EDT, after the DST change
    enrollment = enrol(journey, contact, at=night)
    tick(night)
    delivery = Delivery.objects.get(contact=contact)
    deliveries_send(delivery_ids=[delivery.pk], now=night)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.reason) == ("deferred", "quiet_hours")
    tick(night + MIN)
    enrollment = fresh(enrollment)
    assert enrollment.step_id == "sms-1" and enrollment.status == "active"
    assert enrollment.due_at is not None and eight < enrollment.due_at <= eight + MIN
    tick(eight - MIN)
    assert fresh(enrollment).step_id == "sms-1"
    deliveries_send(delivery_ids=[delivery.pk], now=eight)
    tick(eight + MIN)
    assert fresh(enrollment).status == Enrollment.Status.COMPLETED
    assert ledger(enrollment)[0][2]["delivery_status"] == "sent"
    assert len((outbox / "sms.jsonl").read_text().splitlines()) == 1


def test_contacts_without_sms_consent_get_the_fallback_email() -> None:
    sms = campaign_for([], channel="sms", kind="triggered")
    email = campaign_for([], channel="email", kind="triggered")
    texter = ContactFactory.create(phone="+14155550101")
    grant(texter, channel="sms")
    mailer = ContactFactory.create(phone="+14155550102")
    grant(mailer, channel="email")
    step = {"id": "sms-1", "type": "send", "campaign": sms.slug, "fallback_campaign": email.slug}
    journey = journey_of(step)
    by_contact = {c.pk: enrol(journey, c) for c in (texter, mailer)}
    tick(T0)
    sent = {d.contact_id: d.campaign_id for d in Delivery.objects.all()}
    assert sent == {texter.pk: sms.pk, mailer.pk: email.pk}
    assert ledger(by_contact[mailer.pk])[0][2]["fallback"] is True
    assert ledger(by_contact[texter.pk])[0][2]["fallback"] is False


def test_a_draft_campaign_is_skipped_and_the_contact_moves_on() -> None:
    draft = campaign_for([], channel="email", status=Campaign.Status.DRAFT)
    journey = journey_of({"id": "email-1", "type": "send", "campaign": draft.slug}, NOTE)
    enrollment = enrol(journey, ContactFactory.create())
    tick(T0)
    assert fresh(enrollment).status == Enrollment.Status.COMPLETED
    assert ledger(enrollment)[0][2] == {
        "campaign": draft.slug,
        "channel": "email",
        "fallback": False,
        "delivery_id": None,
        "skipped": "campaign draft",
    }
    assert not Delivery.objects.exists()


def test_sends_advanced_twice_and_claimed_again_deliver_once_each() -> None:
    campaign = campaign_for([], channel="email", kind="triggered")
    journey = journey_of({"id": "email-1", "type": "send", "campaign": campaign.slug})
    contacts = ContactFactory.create_batch(25)
    for contact in contacts:
        enrol(journey, contact)
    lease = claim_lease(T0)
    ids = enrollments_claim(now=T0, limit=100, lease=lease)
    enrollments_advance(ids, lease=lease, now=T0)
    enrollments_advance(ids, lease=lease, now=T0)
    assert enrollments_claim(now=T0, limit=100) == []
    assert Delivery.objects.count() == 25
    assert StepRun.objects.filter(status="running").count() == 25
    # Nobody consented: dispatch skips them, and each enrollment moves on once.
    deliveries_send(delivery_ids=list(Delivery.objects.values_list("pk", flat=True)), now=T0)
    tick(T0 + MIN)
    tick(T0 + 2 * MIN)
    assert Delivery.objects.count() == 25
    assert set(StepRun.objects.values_list("status", flat=True)) == {"done"}
    assert StepRun.objects.count() == 25
    assert Enrollment.objects.filter(status="completed").count() == 25


@pytest.fixture
def hook_server() -> Iterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
    server.server_close()


def test_a_webhook_step_is_called_once_and_recorded(settings: Any, hook_server: Any) -> None:
    settings.TRIGGER_WEBHOOKS_ALLOW_PRIVATE = True
    settings.TRIGGER_WEBHOOK_SECRET = "s3cret"
    url, received = hook_server
    journey = journey_of({"id": "hook", "type": "action", "action": "webhook", "url": url}, NOTE)
    enrollment = enrol(journey, ContactFactory.create())
    tick(T0)
    assert len(received) == 1 and b'"occurrence":"journey-' in received[0]
    assert fresh(enrollment).status == Enrollment.Status.COMPLETED
    assert ledger(enrollment)[0][1:] == ("done", {"action": "webhook", "url": url, "status": 204})


def test_a_webhook_found_running_is_not_called_again(settings: Any, hook_server: Any) -> None:
    settings.TRIGGER_WEBHOOKS_ALLOW_PRIVATE = True
    settings.TRIGGER_WEBHOOK_SECRET = "s3cret"
    url, received = hook_server
    journey = journey_of({"id": "hook", "type": "action", "action": "webhook", "url": url}, NOTE)
    enrollment = enrol(journey, ContactFactory.create())
    # A worker wrote the "running" row, maybe called, and died before recording the answer.
    StepRun.objects.create(enrollment=enrollment, step_id="hook", sequence=0, outcome={})
    tick(T0)
    assert received == []
    assert ledger(enrollment)[0][1:] == (
        "failed",
        {"action": "webhook", "error": "interrupted; not repeated"},
    )
    assert fresh(enrollment).status == Enrollment.Status.COMPLETED


def test_a_send_that_cannot_be_made_fails_its_contacts_and_not_the_others() -> None:
    bare = Campaign.objects.create(name="No variant", slug="no-variant", channel="email")
    Campaign.objects.filter(pk=bare.pk).update(status=Campaign.Status.SENDING)
    broken = journey_of({"id": "email-1", "type": "send", "campaign": "no-variant"}, slug="broken")
    fine = journey_of(NOTE, slug="fine")
    stuck, moving = enrol(broken, ContactFactory.create()), enrol(fine, ContactFactory.create())
    tick(T0)
    stuck = fresh(stuck)
    assert stuck.status == Enrollment.Status.FAILED
    assert stuck.exit_reason.startswith("email-1: DispatchError: Campaign 'no-variant' has no")
    assert fresh(moving).status == Enrollment.Status.COMPLETED
    assert not Delivery.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_webhook_whose_lease_ran_out_meanwhile_is_not_called(settings: Any) -> None:
    settings.TRIGGER_WEBHOOKS_ALLOW_PRIVATE = True
    settings.TRIGGER_WEBHOOK_SECRET = "s3cret"
    received: list[bytes] = []
    others: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            # While this call is slow, the other enrollment's lease ends and another
            # worker claims it again.
            Enrollment.objects.filter(pk__in=others).update(due_at=T0 + 60 * MIN)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        journey = journey_of({"id": "hook", "type": "action", "action": "webhook", "url": url})
        first, second = (enrol(journey, c) for c in ContactFactory.create_batch(2))
        others.append(second.pk)
        tick(T0)
    finally:
        server.shutdown()
        server.server_close()
    assert len(received) == 1
    assert fresh(first).status == Enrollment.Status.COMPLETED
    assert ledger(second) == [("hook", "running", {"action": "webhook"})]
