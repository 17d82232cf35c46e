"""The last-moment checks: what changed between queueing and sending is obeyed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import Delivery
from campaigns.services.launch import campaign_launch
from campaigns.services.send import deliveries_claim, deliveries_send
from crm.models import Contact, Suppression
from crm.normalise import address_hash
from tests.campaigns.dispatch_helpers import campaign_for, deliveries, grant
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db
S = Delivery.Status


def _queued(contact: Contact, **fields: Any) -> Delivery:
    campaign = campaign_for([contact], **fields)
    campaign_launch(campaign=campaign, enqueue=False)
    return Delivery.objects.get(campaign=campaign)


def _send(delivery: Delivery) -> Delivery:
    deliveries_send(delivery_ids=[delivery.pk])
    delivery.refresh_from_db()
    return delivery


def test_a_contact_erased_after_queueing_is_skipped(outbox: Path) -> None:
    ada = ContactFactory.create()
    grant(ada)
    delivery = _queued(ada)
    ada.is_erased = True
    ada.save()
    assert (_send(delivery).status, delivery.reason) == (S.SKIPPED, "erased")


def test_a_contact_without_an_email_address_is_skipped_as_invalid(outbox: Path) -> None:
    ada = ContactFactory.create(email="", phone="+14155550100")
    grant(ada)
    delivery = _send(_queued(ada))
    assert (delivery.status, delivery.reason) == (S.SKIPPED, "invalid_address")


def test_an_sms_to_a_contact_without_a_phone_is_skipped_as_invalid(outbox: Path) -> None:
    ada = ContactFactory.create(phone=None)
    grant(ada, channel="sms")
    delivery = _send(_queued(ada, channel="sms"))
    assert (delivery.status, delivery.reason) == (S.SKIPPED, "invalid_address")


def test_the_suppression_list_is_checked_against_the_current_address(outbox: Path) -> None:
    ada = ContactFactory.create(email="old@example.com")
    grant(ada)
    delivery = _queued(ada)
    ada.email = "new@example.com"
    ada.save()
    Suppression.objects.create(
        channel="email",
        address_hash=address_hash("email", "NEW@example.com"),
        reason=Suppression.Reason.COMPLAINT,
    )
    assert (_send(delivery).status, delivery.reason) == (S.SKIPPED, "suppressed")


def test_consent_for_another_purpose_does_not_count(outbox: Path) -> None:
    ada = ContactFactory.create()
    grant(ada, purpose="marketing")
    delivery = _send(_queued(ada, purpose="newsletter"))
    assert (delivery.status, delivery.reason) == (S.SKIPPED, "no_consent")
    assert "newsletter" in delivery.error


def test_email_consent_does_not_allow_sms(outbox: Path) -> None:
    ada = ContactFactory.create(phone="+14155550100", timezone="UTC")
    grant(ada, channel="email")
    delivery = _queued(ada, channel="sms")
    deliveries_send(delivery_ids=[delivery.pk], now=dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.reason) == (S.SKIPPED, "no_consent")


def test_a_contact_who_paused_marketing_is_skipped_with_the_reason(outbox: Path) -> None:
    ada = ContactFactory.create(marketing_paused_until=timezone.now() + dt.timedelta(weeks=2))
    grant(ada)
    delivery = _send(_queued(ada))
    assert (delivery.status, delivery.reason) == (S.SKIPPED, "paused")


def test_a_marketing_pause_does_not_hold_a_transactional_message(outbox: Path) -> None:
    ada = ContactFactory.create(marketing_paused_until=timezone.now() + dt.timedelta(weeks=2))
    grant(ada)
    assert _send(_queued(ada, is_transactional=True)).status == S.SENT


def test_a_delivery_is_claimed_by_one_caller_only() -> None:
    ada = ContactFactory.create()
    delivery = _queued(ada)
    now = timezone.now()
    assert deliveries_claim(delivery_ids=[delivery.pk], now=now) == [delivery.pk]
    assert deliveries_claim(delivery_ids=[delivery.pk], now=now) == []
    delivery.refresh_from_db()
    assert (delivery.status, delivery.claimed_at) == (S.SENDING, now)


def test_a_deferred_delivery_is_not_claimed_before_its_time() -> None:
    ada = ContactFactory.create()
    delivery = _queued(ada)
    later = timezone.now() + dt.timedelta(hours=1)
    Delivery.objects.filter(pk=delivery.pk).update(status=S.DEFERRED, not_before=later)
    assert deliveries_claim(delivery_ids=[delivery.pk], now=later - dt.timedelta(seconds=1)) == []
    assert deliveries_claim(delivery_ids=[delivery.pk], now=later) == [delivery.pk]


def test_checks_take_a_fixed_number_of_queries_whatever_the_batch_size(outbox: Path) -> None:
    def queries_for(n: int) -> int:
        contacts = ContactFactory.create_batch(n)
        for contact in contacts:
            grant(contact)
        campaign = campaign_for(contacts, purpose="other")  # all skipped: checks only
        campaign_launch(campaign=campaign, enqueue=False)
        ids = [d.pk for d in deliveries(campaign).values()]
        with CaptureQueriesContext(connection) as captured:
            deliveries_send(delivery_ids=ids)
        assert set(Delivery.objects.filter(pk__in=ids).values_list("reason", flat=True)) == {
            "no_consent"
        }
        return len(captured)

    assert queries_for(3) == queries_for(30)
