"""What the labels change downstream: A/B figures count people only, an ESP's opens and clicks
never double count a campaign that tracks its own, admin shows people and machines side by
side, and only a person's click fires a click-triggered rule."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns.abtest.metrics import campaign_metrics
from campaigns.channels.provider_events import EmailEvent
from campaigns.models import Delivery, Response, TrackingHit
from campaigns.services.provider_events import email_event_apply
from crm.models import Contact
from tests.campaigns.tracking_helpers import (
    campaign_of,
    classify,
    hit,
    honeypot_link,
    send_tracked,
    sent_ago,
    tracked_links,
)
from tests.worker import tasks_eager
from triggers.models import TriggerFiring
from triggers.services.rules import ruleset_forget, trigger_rule_save

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17 Safari"


def _esp(delivery: Delivery, event_type: str, url: str = "") -> EmailEvent:
    return {
        "provider": "postmark",
        "event_id": f"{event_type}:{delivery.pk}",
        "event_type": event_type,
        "soft": False,
        "message_id": "",
        "delivery_id": delivery.pk,
        "recipient": delivery.to_address,
        "click_url": url,
        "occurred_at": None,
        "description": "",
        "raw": {"RecordType": event_type.capitalize(), "OriginalLink": url},
    }


def _arm(delivery: Delivery) -> Any:
    [arm] = campaign_metrics(campaign=campaign_of(delivery)).arms
    return arm


@pytest.mark.django_db
def test_ab_figures_count_human_clicks_and_opens_only(outbox: Path, client: Client) -> None:
    delivery, message = send_tracked(outbox)
    sent_ago(delivery, 2)
    for link in tracked_links(message):  # a gateway's burst on delivery
        hit(client, link, ua=BROWSER, ip="198.51.100.66")
    classify()

    assert (_arm(delivery).clicked, _arm(delivery).opened) == (0, 0)

    sent_ago(delivery, 120)
    hit(client, tracked_links(message)[1], ua=BROWSER, ip="203.0.113.5")
    classify()

    assert _arm(delivery).clicked == 1


@pytest.mark.django_db
def test_esp_opens_and_clicks_are_kept_but_not_counted_when_own_tracking_is_on(
    outbox: Path, client: Client
) -> None:
    delivery, message = send_tracked(outbox)
    sent_ago(delivery, 120)
    email_event_apply(event=_esp(delivery, "opened"))
    email_event_apply(event=_esp(delivery, "clicked", "https://shop.example.com/teapots"))
    hit(client, tracked_links(message)[1], ua=BROWSER)
    classify()

    esp = Response.objects.filter(provider="postmark").order_by("pk")
    assert [(r.kind, r.label, r.label_reasons) for r in esp] == [
        ("opened", "not_counted", ["own_tracking_on"]),
        ("clicked", "not_counted", ["own_tracking_on"]),
    ]
    assert esp[1].payload["OriginalLink"] == "https://shop.example.com/teapots"
    arm = _arm(delivery)
    # One click (own), counted once; the ESP's open does not count either.
    assert (arm.clicked, arm.opened) == (1, 0)


@pytest.mark.django_db
def test_esp_opens_and_clicks_count_when_own_tracking_is_off(outbox: Path) -> None:
    delivery, _ = send_tracked(outbox, track_opens_clicks=False)
    email_event_apply(event=_esp(delivery, "opened"))
    email_event_apply(event=_esp(delivery, "clicked", "https://shop.example.com/teapots"))

    assert set(Response.objects.values_list("label", flat=True)) == {"human"}
    arm = _arm(delivery)
    assert (arm.clicked, arm.opened) == (1, 1)


@pytest.mark.django_db
def test_admin_results_show_people_and_machines(
    outbox: Path, client: Client, marketer_client: Client
) -> None:
    delivery, message = send_tracked(outbox)
    sent_ago(delivery, 1)
    links = tracked_links(message)
    for link in [honeypot_link(message), *links]:
        hit(client, link, ua=BROWSER, ip="198.51.100.66")
    classify()
    sent_ago(delivery, 300)
    hit(client, links[0], ua=BROWSER, ip="203.0.113.5")
    classify()

    page = marketer_client.get(
        reverse("admin:campaigns_campaign_results", args=[delivery.campaign_id])
    ).content.decode()

    clicks = page[page.index('data-row="clicks"') :]
    clicks = clicks[: clicks.index("</tr>")]
    assert '<td class="human">1</td>' in clicks
    assert '<td class="machine">1</td>' in clicks  # link 2: only the scanner hit it


# --- The rule test: a scanner burst fires nothing, a person's click does -------------------


@pytest.fixture
def click_rule(settings: Any) -> Iterator[None]:
    settings.TRIGGER_RULES_CHECK_SECONDS = 0
    ruleset_forget()
    trigger_rule_save(
        data={
            "name": "Clicked",
            "slug": "clicked",
            "enabled": True,
            "description": "",
            "conditions": [
                {"id": "event_count", "event": "email_clicked", "count": 1, "hours": 24}
            ],
            "match_mode": "all",
            "actions": [{"id": "set_attribute", "attribute": "clicked_mail", "value": "yes"}],
            "reentry": "once_ever",
            "reentry_days": None,
            "priority": 0,
            "active_from": None,
            "active_until": None,
            "audience_segment": None,
        },
        via="test",
    )
    yield
    ruleset_forget()


@pytest.mark.django_db(transaction=True)
def test_a_scanner_burst_fires_no_click_rule_but_a_persons_click_a_minute_later_does(
    outbox: Path, client: Client, click_rule: None
) -> None:
    delivery, message = send_tracked(outbox)
    sent_ago(delivery, 0.3)
    scanner = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/119 Safari/537.36"
    )

    from config.celery import app

    # Configured before tasks_eager sets its override: configured inside the block (as on
    # the Redis broker), Celery replaces the overrides and tasks_eager cannot restore them.
    app.loader.import_default_modules()
    with tasks_eager():  # rule evaluation runs as soon as it is queued, as a fast worker would
        for link in [honeypot_link(message), *tracked_links(message)]:
            hit(client, link, ua=scanner, ip="198.51.100.66")
        classify()

        assert set(TrackingHit.objects.values_list("label", flat=True)) == {"scanner"}
        assert not TriggerFiring.objects.exists()

        # A minute later, the person reads the message and clicks.
        minute = dt.timedelta(seconds=60)
        Delivery.objects.filter(pk=delivery.pk).update(sent_at=timezone.now() - minute)
        TrackingHit.objects.update(occurred_at=timezone.now() - minute)
        hit(client, tracked_links(message)[0], ua=BROWSER, ip="203.0.113.5")
        classify()

    firing = TriggerFiring.objects.get()
    assert firing.contact_id == delivery.contact_id
    assert Contact.objects.get(pk=delivery.contact_id).attributes["clicked_mail"] == "yes"
    assert sorted(TrackingHit.objects.values_list("label", flat=True)) == [
        "human",
        "scanner",
        "scanner",
        "scanner",
    ]
