"""The dispatch pipeline end to end in one process: launch → deliveries → batches → claim →
checks → render → the real anymail Postmark backend / twilio client → the fake provider."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import Counter
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from campaigns.models import Campaign, Delivery
from campaigns.services.assignment import assign
from campaigns.services.launch import campaign_deliver_to_contact, campaign_launch
from campaigns.services.send import campaign_drain, deliveries_send
from campaigns.services.state import (
    campaign_cancel,
    campaign_pause,
    campaign_progress,
    campaign_resume,
)
from campaigns.services.sweeps import deliveries_enqueue_due
from crm.models import ConsentRecord, Suppression
from crm.normalise import address_hash
from crm.selectors import consent_current
from crm.services.consent import consent_record
from tests.campaigns.dispatch_helpers import (
    campaign_for,
    deliveries,
    emails_to,
    grant,
    segment_of,
    sms_to,
    tasks_run_inline,
    use_postmark,
    use_twilio,
)
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db
S = Delivery.Status


@pytest.fixture
def postmark(settings: Any, fake_provider: Any) -> Any:
    use_postmark(settings, fake_provider.url, timeout=1)
    settings.SEND_RETRY_BASE_SECONDS = 30
    return fake_provider


@pytest.fixture
def twilio(settings: Any, fake_provider: Any) -> Any:
    use_twilio(settings, fake_provider.url)
    return fake_provider


def _launch_and_run(campaign: Campaign, capture: Any, **kwargs: Any) -> Any:
    with tasks_run_inline(), capture(execute=True):
        return campaign_launch(campaign=campaign, **kwargs)


def test_a_broadcast_reaches_each_consenting_member_once_through_postmark(
    postmark: Any, django_capture_on_commit_callbacks: Any
) -> None:
    ada = ContactFactory.create(email="ada@example.com", first_name="Ada")
    bob = ContactFactory.create(email="bob@example.com", first_name="Bob")
    grant(ada)
    grant(bob)
    campaign = campaign_for([ada, bob], kind=Campaign.Kind.BROADCAST)

    result = _launch_and_run(campaign, django_capture_on_commit_callbacks)

    assert result.created == 2 and result.enqueued == 2
    assert sorted(emails_to(postmark)) == ["ada@example.com", "bob@example.com"]
    sent = postmark.requests[0].json()
    assert sent["Subject"] in {"Hello Ada", "Hello Bob"}
    rows = deliveries(campaign)
    assert {d.status for d in rows.values()} == {S.SENT}
    assert all(d.provider_message_id and d.sent_at and d.to_address for d in rows.values())
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE


def test_launching_twice_sends_nothing_more(
    postmark: Any, django_capture_on_commit_callbacks: Any
) -> None:
    ada = ContactFactory.create()
    grant(ada)
    campaign = campaign_for([ada], kind=Campaign.Kind.BROADCAST)
    _launch_and_run(campaign, django_capture_on_commit_callbacks)
    again = _launch_and_run(campaign, django_capture_on_commit_callbacks)
    assert again.created == 0
    assert len(emails_to(postmark)) == 1
    assert Delivery.objects.filter(campaign=campaign).count() == 1


def test_no_email_to_a_member_without_consent_or_on_the_suppression_list(
    postmark: Any, django_capture_on_commit_callbacks: Any
) -> None:
    never = ContactFactory.create(email="never@example.com")
    suppressed = ContactFactory.create(email="Gone@Example.com")
    grant(suppressed)
    Suppression.objects.create(
        channel="email",
        address_hash=address_hash("email", "gone@example.com"),
        reason=Suppression.Reason.HARD_BOUNCE,
    )
    campaign = campaign_for([never, suppressed])

    _launch_and_run(campaign, django_capture_on_commit_callbacks)

    assert emails_to(postmark) == []
    rows = deliveries(campaign)
    assert (rows[never.pk].status, rows[never.pk].reason) == (S.SKIPPED, "no_consent")
    assert (rows[suppressed.pk].status, rows[suppressed.pk].reason) == (S.SKIPPED, "suppressed")


def test_consent_withdrawn_after_queueing_stops_the_send(postmark: Any) -> None:
    ada = ContactFactory.create()
    grant(ada)
    campaign = campaign_for([ada])
    campaign_launch(campaign=campaign, enqueue=False)
    delivery = deliveries(campaign)[ada.pk]
    assert delivery.status == S.QUEUED

    consent_record(
        contact=ada,
        channel="email",
        status=ConsentRecord.Status.WITHDRAWN,
        source=ConsentRecord.Source.UNSUBSCRIBE_LINK,
    )
    deliveries_send(delivery_ids=[delivery.pk])

    delivery.refresh_from_db()
    assert (delivery.status, delivery.reason) == (S.SKIPPED, "no_consent")
    assert emails_to(postmark) == []


def test_the_holdout_group_gets_nothing_and_is_recorded(
    postmark: Any, django_capture_on_commit_callbacks: Any
) -> None:
    contacts = ContactFactory.create_batch(40)
    for contact in contacts:
        grant(contact)
    campaign = campaign_for(contacts, holdout_percent=Decimal("25"))

    result = _launch_and_run(campaign, django_capture_on_commit_callbacks)

    held = [d for d in deliveries(campaign).values() if d.is_holdout]
    assert result.holdout == len(held) > 0
    assert all((d.status, d.reason, d.variant_id) == (S.SKIPPED, "holdout", None) for d in held)
    held_emails = {c.email for c in contacts if c.pk in {d.contact_id for d in held}}
    assert not held_emails & set(emails_to(postmark))
    assert len(emails_to(postmark)) == 40 - len(held)


def test_assignment_is_deterministic_and_honours_weights_and_holdout() -> None:
    variants = [(11, 1), (12, 3)]
    draws = [
        assign(campaign_id=7, contact_id=cid, variants=variants, holdout_percent=Decimal("10"))
        for cid in range(1, 10_001)
    ]
    again = [
        assign(campaign_id=7, contact_id=cid, variants=variants, holdout_percent=Decimal("10"))
        for cid in range(1, 10_001)
    ]
    assert draws == again
    counts: Counter[str] = Counter("holdout" if d.is_holdout else str(d.variant_id) for d in draws)
    expected = {"holdout": 1000.0, "11": 9000 * 0.25, "12": 9000 * 0.75}
    chi_square = sum((counts[k] - e) ** 2 / e for k, e in expected.items())
    # 2 degrees of freedom: 13.8 is the 99.9th percentile.
    assert chi_square < 13.8, counts
    # Another campaign shuffles people differently.
    other = [
        assign(campaign_id=8, contact_id=cid, variants=variants, holdout_percent=0)
        for cid in range(1, 1001)
    ]
    assert [d.variant_id for d in other] != [d.variant_id for d in draws[:1000]]
    assert math.isclose(sum(d.variant_id == 12 for d in other) / 1000, 0.75, abs_tol=0.06)


def test_a_provider_503_is_retried_with_backoff_then_sent(postmark: Any) -> None:
    ada = ContactFactory.create()
    grant(ada)
    campaign = campaign_for([ada])
    campaign_launch(campaign=campaign, enqueue=False)
    delivery = deliveries(campaign)[ada.pk]
    postmark.behaviour.script = [503]
    now = timezone.now()

    deliveries_send(delivery_ids=[delivery.pk], now=now)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.reason, delivery.attempts) == (S.QUEUED, "provider_error", 1)
    assert delivery.not_before is not None
    assert now + dt.timedelta(seconds=14) < delivery.not_before <= now + dt.timedelta(seconds=31)

    deliveries_send(delivery_ids=[delivery.pk], now=now + dt.timedelta(seconds=5))
    delivery.refresh_from_db()
    assert delivery.status == S.QUEUED  # not yet due: nothing claimed

    deliveries_send(delivery_ids=[delivery.pk], now=now + dt.timedelta(minutes=1))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (S.SENT, 2)
    assert len(postmark.requests) == 2  # the refused one and the accepted one


def test_retries_stop_at_the_attempt_limit(postmark: Any, settings: Any) -> None:
    settings.SEND_MAX_ATTEMPTS = 2
    ada = ContactFactory.create()
    grant(ada)
    campaign = campaign_for([ada])
    campaign_launch(campaign=campaign, enqueue=False)
    delivery = deliveries(campaign)[ada.pk]
    postmark.behaviour.script = [500, 500]
    now = timezone.now()
    deliveries_send(delivery_ids=[delivery.pk], now=now)
    deliveries_send(delivery_ids=[delivery.pk], now=now + dt.timedelta(hours=1))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.reason, delivery.attempts) == (S.FAILED, "provider_error", 2)


def test_a_timeout_after_the_request_went_out_is_uncertain_and_never_resent(
    postmark: Any,
) -> None:
    ada = ContactFactory.create()
    grant(ada)
    campaign = campaign_for([ada])
    campaign_launch(campaign=campaign, enqueue=False)
    delivery = deliveries(campaign)[ada.pk]
    postmark.behaviour.delay_seconds = 2  # the backend gives up after 1 s

    deliveries_send(delivery_ids=[delivery.pk])
    postmark.behaviour.delay_seconds = 0
    delivery.refresh_from_db()
    assert delivery.status == S.UNCERTAIN
    assert delivery.handed_over_at is not None

    later = timezone.now() + dt.timedelta(hours=2)
    deliveries_enqueue_due(now=later)
    deliveries_send(delivery_ids=[delivery.pk], now=later)
    delivery.refresh_from_db()
    assert delivery.status == S.UNCERTAIN
    time.sleep(1.5)  # the fake records the slow request once it has answered
    assert len(postmark.requests) == 1


def test_an_invalid_recipient_fails_the_delivery_and_suppresses_the_address(
    postmark: Any,
) -> None:
    ada = ContactFactory.create(email="nobody@example.com")
    grant(ada)
    campaign = campaign_for([ada])
    campaign_launch(campaign=campaign, enqueue=False)
    postmark.behaviour.script = [
        {
            "status": 422,
            "json": {"ErrorCode": 300, "Message": "Invalid 'To' address: 'nobody@example.com'."},
        }
    ]
    deliveries_send(delivery_ids=[deliveries(campaign)[ada.pk].pk])
    delivery = deliveries(campaign)[ada.pk]
    assert (delivery.status, delivery.reason) == (S.FAILED, "invalid_address")
    assert Suppression.objects.filter(
        channel="email", address_hash=address_hash("email", "nobody@example.com")
    ).exists()


def test_twilio_21610_withdraws_sms_consent_by_keyword(twilio: Any) -> None:
    ada = ContactFactory.create(phone="+14155550100", timezone="UTC")
    grant(ada, channel="sms")
    campaign = campaign_for([ada], channel="sms", is_transactional=False)
    campaign_launch(campaign=campaign, enqueue=False)
    twilio.behaviour.script = [
        {"status": 400, "json": {"code": 21610, "message": "Attempt to send to unsubscribed"}}
    ]
    noon = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
    deliveries_send(delivery_ids=[deliveries(campaign)[ada.pk].pk], now=noon)

    delivery = deliveries(campaign)[ada.pk]
    assert (delivery.status, delivery.reason) == (S.FAILED, "no_consent")
    latest = ConsentRecord.objects.filter(contact=ada, channel="sms").order_by("-id").first()
    assert latest is not None
    assert (latest.status, latest.source) == ("withdrawn", "sms_keyword")
    suppression = Suppression.objects.get(
        channel="sms", address_hash=address_hash("sms", "+14155550100")
    )
    assert suppression.reason == "carrier_stop"


def test_twilio_21610_during_a_send_withdraws_every_sms_purpose_like_the_status_callback(
    twilio: Any,
) -> None:
    """A STOP at the carrier is the person's "stop everything" on SMS, whether Twilio says so
    when we send or later in a status callback: no SMS topic stays granted."""
    ada = ContactFactory.create(phone="+14155550100", timezone="UTC")
    grant(ada, channel="sms")
    grant(ada, channel="sms", purpose="newsletter")
    campaign = campaign_for([ada], channel="sms", is_transactional=False)
    campaign_launch(campaign=campaign, enqueue=False)
    twilio.behaviour.script = [
        {"status": 400, "json": {"code": 21610, "message": "Attempt to send to unsubscribed"}}
    ]
    noon = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
    deliveries_send(delivery_ids=[deliveries(campaign)[ada.pk].pk], now=noon)

    granted = {
        purpose
        for (channel, purpose), status in consent_current([ada.pk])[ada.pk].items()
        if channel == "sms" and status == "granted"
    }
    assert granted == set()


def test_an_sms_campaign_goes_through_the_twilio_client(twilio: Any) -> None:
    ada = ContactFactory.create(phone="+14155550100", first_name="Ada", timezone="UTC")
    grant(ada, channel="sms")
    campaign = campaign_for([ada], channel="sms")
    campaign_launch(campaign=campaign, enqueue=False)
    noon = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
    campaign_drain(campaign=campaign, now=noon)
    assert sms_to(twilio) == ["+14155550100"]
    body = twilio.requests[0].form()["Body"][0]
    assert body.startswith("Hi Ada, mugs 10% off.")
    assert deliveries(campaign)[ada.pk].provider_message_id.startswith("SM")


def test_a_template_error_skips_the_delivery_with_the_error_text(postmark: Any) -> None:
    ada = ContactFactory.create()
    grant(ada)
    campaign = campaign_for([ada], subject="Hi {{ contact.first_name|nosuchfilter }}")
    campaign_launch(campaign=campaign, enqueue=False)
    campaign_drain(campaign=campaign)
    delivery = deliveries(campaign)[ada.pk]
    assert (delivery.status, delivery.reason) == (S.SKIPPED, "render_error")
    assert "nosuchfilter" in delivery.error
    assert emails_to(postmark) == []


def test_send_at_local_time_waits_for_ten_in_each_recipients_zone(postmark: Any) -> None:
    tokyo = ContactFactory.create(timezone="Asia/Tokyo")
    paris = ContactFactory.create(timezone="Europe/Paris")
    nowhere = ContactFactory.create(timezone="")
    for contact in (tokyo, paris, nowhere):
        grant(contact)
    campaign = campaign_for([tokyo, paris, nowhere], send_at_local_time=dt.time(10))
    # 2026-03-10 05:00 UTC: 14:00 in Tokyo (10:00 has passed), 06:00 in Paris.
    now = dt.datetime(2026, 3, 10, 5, tzinfo=dt.UTC)
    result = campaign_launch(campaign=campaign, now=now, enqueue=False)
    rows = deliveries(campaign)
    assert result.waiting_local_time == 3
    assert rows[tokyo.pk].not_before == dt.datetime(2026, 3, 11, 1, tzinfo=dt.UTC)
    assert rows[paris.pk].not_before == dt.datetime(2026, 3, 10, 9, tzinfo=dt.UTC)
    assert rows[nowhere.pk].not_before == dt.datetime(2026, 3, 10, 10, tzinfo=dt.UTC)
    assert {(d.status, d.reason) for d in rows.values()} == {(S.DEFERRED, "local_time")}

    deliveries_send(delivery_ids=[d.pk for d in rows.values()], now=now)
    assert emails_to(postmark) == []  # nothing is due yet
    deliveries_send(
        delivery_ids=[d.pk for d in rows.values()],
        now=dt.datetime(2026, 3, 10, 9, 1, tzinfo=dt.UTC),
    )
    assert emails_to(postmark) == [paris.email]


def test_pause_holds_the_queue_resume_sends_it_and_cancel_skips_it(
    postmark: Any, django_capture_on_commit_callbacks: Any
) -> None:
    contacts = ContactFactory.create_batch(3)
    for contact in contacts:
        grant(contact)
    campaign = campaign_for(contacts)
    campaign_launch(campaign=campaign, enqueue=False)
    ids = [d.pk for d in deliveries(campaign).values()]

    campaign_pause(campaign=campaign)
    report = deliveries_send(delivery_ids=ids)
    assert report.claimed == 0 and emails_to(postmark) == []
    assert set(Delivery.objects.filter(pk__in=ids).values_list("status", flat=True)) == {S.QUEUED}

    with tasks_run_inline(), django_capture_on_commit_callbacks(execute=True):
        assert campaign_resume(campaign=campaign) == 3
    assert len(emails_to(postmark)) == 3

    other = campaign_for(contacts)
    campaign_launch(campaign=other, enqueue=False)
    assert campaign_cancel(campaign=other) == 3
    deliveries_send(delivery_ids=[d.pk for d in deliveries(other).values()])
    assert len(emails_to(postmark)) == 3
    assert campaign_progress(campaign=other)["by_reason"] == {"cancelled": 3}


def test_progress_counts_by_status_and_reason(postmark: Any) -> None:
    yes = ContactFactory.create()
    grant(yes)
    no = ContactFactory.create()
    campaign = campaign_for([yes, no])
    campaign_launch(campaign=campaign, enqueue=False)
    campaign_drain(campaign=campaign)
    progress = campaign_progress(campaign=campaign)
    assert progress["total"] == 2
    assert progress["by_status"] == {"sent": 1, "skipped": 1}
    assert progress["by_reason"] == {"no_consent": 1}


def test_a_trigger_delivery_is_created_once_and_a_replay_enqueues_nothing(
    postmark: Any, django_capture_on_commit_callbacks: Any
) -> None:
    ada = ContactFactory.create()
    grant(ada)
    campaign = campaign_for([], kind=Campaign.Kind.TRIGGERED)
    with tasks_run_inline(), django_capture_on_commit_callbacks(execute=True) as first:
        delivery = campaign_deliver_to_contact(
            campaign=campaign, contact_id=ada.pk, occurrence="rule-3:firing-9"
        )
    assert delivery is not None and len(first) == 1
    with tasks_run_inline(), django_capture_on_commit_callbacks(execute=True) as replay:
        again = campaign_deliver_to_contact(
            campaign=campaign, contact_id=ada.pk, occurrence="rule-3:firing-9"
        )
    assert again is not None and again.pk == delivery.pk
    assert replay == []
    assert len(emails_to(postmark)) == 1
    again.refresh_from_db()
    assert again.status == S.SENT


def test_a_trigger_for_an_excluded_contact_records_a_skip(postmark: Any) -> None:
    ada = ContactFactory.create()
    grant(ada)
    campaign = campaign_for([], kind=Campaign.Kind.TRIGGERED)
    campaign.exclusion_segments.add(segment_of([ada]))
    delivery = campaign_deliver_to_contact(campaign=campaign, contact_id=ada.pk, occurrence="x")
    assert delivery is not None
    assert (delivery.status, delivery.reason) == (S.SKIPPED, "excluded")


def test_exclusion_segments_and_erased_contacts_get_no_delivery(postmark: Any) -> None:
    keep, excluded, erased = ContactFactory.create_batch(3)
    erased.is_erased = True
    erased.save()
    campaign = campaign_for([keep, excluded, erased])
    campaign.exclusion_segments.add(segment_of([excluded]))
    result = campaign_launch(campaign=campaign, enqueue=False)
    assert result.created == 1
    assert list(deliveries(campaign)) == [keep.pk]


def test_the_send_command_sends_inline_with_progress(postmark: Any) -> None:
    ada = ContactFactory.create()
    grant(ada)
    campaign = campaign_for([ada], kind=Campaign.Kind.BROADCAST, status=Campaign.Status.DRAFT)
    out = StringIO()
    call_command("campaigns", "send", campaign.slug, "--inline", stdout=out)
    text = out.getvalue()
    assert f"Launched {campaign.slug}: 1 new deliveries" in text
    assert "sent 1" in text
    assert f"{campaign.slug} is done." in text
    assert len(emails_to(postmark)) == 1


def test_the_send_command_names_an_unknown_slug() -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no-such-campaign"):
        call_command("campaigns", "send", "no-such-campaign")


@pytest.mark.parametrize("store", ["database", "redis"])
def test_the_send_rate_limit_holds(store: str, outbox: Any, settings: Any, tmp_path: Any) -> None:
    import shutil
    import socket
    import subprocess

    settings.SEND_RATE_EMAIL_PER_SECOND = 20
    server = None
    if store == "redis":
        if not shutil.which("redis-server"):
            pytest.skip("redis-server is not installed")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL,
        )
        settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
    try:
        contacts = ContactFactory.create_batch(40)
        for contact in contacts:
            grant(contact)
        campaign = campaign_for(contacts)
        campaign_launch(campaign=campaign, enqueue=False)
        started = time.monotonic()
        campaign_drain(campaign=campaign)
        elapsed = time.monotonic() - started
    finally:
        if server is not None:
            server.terminate()
            server.wait()
    assert len(list((outbox / "email").glob("*.eml"))) == 40
    # A full bucket (20) goes at once, the other 20 at 20 per second.
    assert elapsed >= 0.9


def test_a_scheduled_broadcast_starts_when_its_time_has_passed(
    outbox: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from campaigns.services.sweeps import campaigns_start_due

    ada = ContactFactory.create()
    grant(ada)
    soon = timezone.now() + dt.timedelta(minutes=5)
    campaign = campaign_for(
        [ada], kind=Campaign.Kind.BROADCAST, status=Campaign.Status.SCHEDULED, scheduled_at=soon
    )
    assert campaigns_start_due() == []
    with tasks_run_inline(), django_capture_on_commit_callbacks(execute=True):
        assert campaigns_start_due(now=soon) == [f"{campaign.slug}/"]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE
    assert len(list((outbox / "email").glob("*.eml"))) == 1


def test_a_recurring_campaign_launches_each_crontab_slot_once(outbox: Any) -> None:
    from django_celery_beat.models import CrontabSchedule

    from campaigns.services.sweeps import campaigns_start_due

    ada = ContactFactory.create()
    grant(ada)
    daily = CrontabSchedule.objects.create(
        minute="0",
        hour="10",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone="Europe/Paris",
    )
    campaign = campaign_for([ada], kind=Campaign.Kind.RECURRING, crontab=daily)
    # 10:00 in Paris on 2026-06-01 is 08:00 UTC.
    assert campaigns_start_due(now=dt.datetime(2026, 6, 1, 7, 59, tzinfo=dt.UTC)) == []
    first = campaigns_start_due(now=dt.datetime(2026, 6, 1, 8, 1, tzinfo=dt.UTC))
    assert first == [f"{campaign.slug}/2026-06-01T08:00Z"]
    assert campaigns_start_due(now=dt.datetime(2026, 6, 1, 8, 2, tzinfo=dt.UTC)) == []
    campaigns_start_due(now=dt.datetime(2026, 6, 2, 8, 0, tzinfo=dt.UTC))
    assert sorted(
        Delivery.objects.filter(campaign=campaign).values_list("occurrence", flat=True)
    ) == [
        "2026-06-01T08:00Z",
        "2026-06-02T08:00Z",
    ]


def test_a_recurring_slot_whose_launch_died_part_way_is_launched_again_and_completed(
    outbox: Any,
) -> None:
    from django_celery_beat.models import CrontabSchedule

    from campaigns.services.sweeps import campaigns_start_due

    people = ContactFactory.create_batch(3)
    for person in people:
        grant(person)
    daily = CrontabSchedule.objects.create(
        minute="0", hour="8", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    campaign = campaign_for(people, kind=Campaign.Kind.RECURRING, crontab=daily)
    slot = "2026-06-01T08:00Z"
    # What a worker lost after the launch's first chunk leaves: one delivery of three.
    Delivery.objects.create(
        campaign=campaign, occurrence=slot, contact=people[0], variant=campaign.variants.first()
    )

    at = dt.datetime(2026, 6, 1, 8, 1, tzinfo=dt.UTC)
    assert campaigns_start_due(now=at) == [f"{campaign.slug}/{slot}"]
    assert campaigns_start_due(now=at + dt.timedelta(minutes=1)) == []
    assert sorted(
        Delivery.objects.filter(campaign=campaign, occurrence=slot).values_list(
            "contact_id", flat=True
        )
    ) == sorted(p.pk for p in people)


def test_rows_left_by_a_lost_worker_are_requeued_or_marked_uncertain() -> None:
    ada, bob = ContactFactory.create_batch(2)
    campaign = campaign_for([ada, bob])
    campaign_launch(campaign=campaign, enqueue=False)
    rows = deliveries(campaign)
    long_ago = timezone.now() - dt.timedelta(hours=1)
    Delivery.objects.filter(campaign=campaign).update(status=S.SENDING, claimed_at=long_ago)
    Delivery.objects.filter(pk=rows[bob.pk].pk).update(handed_over_at=long_ago)

    result = deliveries_enqueue_due()

    assert (result.requeued_lost, result.uncertain_lost) == (1, 1)
    rows = deliveries(campaign)
    assert rows[ada.pk].status == S.QUEUED
    assert rows[bob.pk].status == S.UNCERTAIN


def test_deferred_deliveries_are_enqueued_by_the_sweep_once_due(
    outbox: Any, django_capture_on_commit_callbacks: Any
) -> None:
    ada = ContactFactory.create()
    grant(ada)
    campaign = campaign_for([ada])
    campaign_launch(campaign=campaign, enqueue=False)
    later = timezone.now() + dt.timedelta(minutes=10)
    Delivery.objects.filter(campaign=campaign).update(
        status=S.DEFERRED, reason="capped", not_before=later
    )
    assert deliveries_enqueue_due().enqueued == 0
    with django_capture_on_commit_callbacks(execute=False) as published:
        assert deliveries_enqueue_due(now=later).enqueued == 1
    assert len(published) == 1
    assert deliveries_enqueue_due(now=later).enqueued == 0  # not enqueued twice
