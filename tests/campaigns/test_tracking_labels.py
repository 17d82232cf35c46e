"""Each hit labelled human, scanner or machine_open with its reasons, through the real views
and the classifying task; one Response per delivery and link (or per delivery for opens),
and crm events for people only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from campaigns.models import Delivery, Response, TrackingHit
from crm.models import Event
from tests.campaigns.tracking_helpers import (
    PIXEL,
    classify,
    hit,
    honeypot_link,
    parts,
    send_tracked,
    sent_ago,
    tracked_links,
)

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120 Safari/537.36"


@pytest.fixture
def sent(outbox: Path) -> tuple[Delivery, list[str], str, str]:
    """A message sent five minutes ago: its delivery, visible links, honeypot and pixel."""
    delivery, message = send_tracked(outbox)
    sent_ago(delivery, 300)
    html, _ = parts(message)
    return delivery, tracked_links(message), honeypot_link(message), PIXEL.findall(html)[0]


def _labels() -> list[tuple[str, list[str]]]:
    return [(h.label, h.label_reasons) for h in TrackingHit.objects.order_by("pk")]


def test_a_person_clicking_minutes_after_delivery_is_human_and_becomes_an_event(
    sent: Any, client: Client
) -> None:
    delivery, links, _, _ = sent

    hit(client, links[0], ua=BROWSER)
    report = classify()

    assert report.hits == 1
    assert _labels() == [("human", [])]
    response = Response.objects.get(kind="clicked")
    assert (response.label, response.url, response.delivery_id) == (
        "human",
        "https://shop.example.com/mugs?colour=blue&size=l",
        delivery.pk,
    )
    event = Event.objects.get(type="email_clicked")
    assert event.contact_id == delivery.contact_id
    assert event.properties == {
        "campaign": delivery.campaign.slug,
        "variant": "A",
        "delivery": delivery.pk,
        "url": "https://shop.example.com/mugs?colour=blue&size=l",
    }
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED  # a click proves it arrived


def test_a_click_sooner_than_the_threshold_is_a_scanner(outbox: Path, client: Client) -> None:
    delivery, message = send_tracked(outbox)
    sent_ago(delivery, 3)

    hit(client, tracked_links(message)[0], ua=BROWSER)
    classify()

    assert _labels() == [("scanner", ["too_soon"])]
    assert Response.objects.get(kind="clicked").label == "scanner"
    assert not Event.objects.filter(type="email_clicked").exists()


def test_the_threshold_is_a_setting(outbox: Path, client: Client, settings: Any) -> None:
    settings.TRACKING_SCANNER_SECONDS = 120
    delivery, message = send_tracked(outbox)
    sent_ago(delivery, 60)

    hit(client, tracked_links(message)[0], ua=BROWSER)
    classify()

    assert _labels() == [("scanner", ["too_soon"])]


def test_two_links_within_a_second_from_one_address_are_a_scanner(
    sent: Any, client: Client
) -> None:
    _, links, _, _ = sent

    hit(client, links[0], ua=BROWSER, ip="198.51.100.9")
    hit(client, links[1], ua=BROWSER, ip="198.51.100.9")
    classify()

    assert _labels() == [("scanner", ["link_burst"]), ("scanner", ["link_burst"])]
    assert not Event.objects.exists()


def test_the_same_links_from_two_people_are_two_humans(sent: Any, client: Client) -> None:
    _, links, _, _ = sent

    hit(client, links[0], ua=BROWSER, ip="198.51.100.9")
    hit(client, links[1], ua=BROWSER, ip="198.51.100.10")
    classify()

    assert [label for label, _ in _labels()] == ["human", "human"]


def test_a_burst_split_across_two_runs_is_still_found(sent: Any, client: Client) -> None:
    _, links, _, _ = sent

    hit(client, links[0], ua=BROWSER, ip="198.51.100.9")
    classify()
    hit(client, links[1], ua=BROWSER, ip="198.51.100.9")
    classify()

    assert [label for label, _ in _labels()] == ["scanner", "scanner"]
    assert set(Response.objects.values_list("label", flat=True)) == {"scanner"}


def test_an_address_that_followed_the_honeypot_is_a_scanner(sent: Any, client: Client) -> None:
    _, links, trap, _ = sent

    hit(client, trap, ua=BROWSER, ip="198.51.100.20")
    hit(client, links[0], ua=BROWSER, ip="198.51.100.20")
    classify()

    assert [reasons for _, reasons in _labels()] == [["honeypot"], ["honeypot"]]
    # The honeypot is no link of the message: it makes no Response of its own.
    assert Response.objects.get().label == "scanner"


def test_a_head_request_is_a_scanner(sent: Any, client: Client) -> None:
    _, links, _, _ = sent

    hit(client, links[0], ua=BROWSER, method="head")
    classify()

    assert _labels() == [("scanner", ["head_request"])]


@pytest.mark.parametrize(
    ("ua", "reason"),
    [
        ("Barracuda Sentinel (EE)", "scanner_user_agent"),
        ("python-requests/2.31", "scanner_user_agent"),
        ("Mozilla/5.0 (X11) HeadlessChrome/120.0", "scanner_user_agent"),
        ("", "no_user_agent"),
    ],
)
def test_known_scanner_agents_are_scanners(sent: Any, client: Client, ua: str, reason: str) -> None:
    _, links, _, _ = sent

    hit(client, links[0], ua=ua)
    classify()

    assert _labels() == [("scanner", [reason])]


def test_a_mail_security_network_is_a_scanner(sent: Any, client: Client, settings: Any) -> None:
    _, links, _, _ = sent
    settings.TRACKING_SCANNER_NETWORKS = ["192.0.2.0/24"]

    hit(client, links[0], ua=BROWSER, ip="64.235.150.1")  # Barracuda's published range
    hit(client, links[0], ua=BROWSER, ip="192.0.2.77")  # one a deployment added
    classify()

    assert _labels() == [("scanner", ["scanner_network"]), ("scanner", ["scanner_network"])]


def test_apples_privacy_proxy_is_a_machine_open(sent: Any, client: Client) -> None:
    _, _, _, pixel = sent

    hit(client, pixel, ua="Mozilla/5.0", ip="17.58.100.4")
    classify()

    assert _labels() == [("machine_open", ["apple_privacy_proxy"])]
    assert Response.objects.get(kind="opened").label == "machine_open"
    assert not Event.objects.filter(type="email_opened").exists()


def test_gmails_image_proxy_is_a_real_open(sent: Any, client: Client) -> None:
    delivery, _, _, pixel = sent
    gmail = (
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    )

    hit(client, pixel, ua=gmail, ip="66.249.84.1")
    classify()

    assert _labels() == [("human", ["gmail_image_proxy"])]
    assert Response.objects.get(kind="opened").label == "human"
    assert Event.objects.get(type="email_opened").properties["delivery"] == delivery.pk


def test_a_later_human_click_relabels_the_proxy_open_as_human(sent: Any, client: Client) -> None:
    _, links, _, pixel = sent
    hit(client, pixel, ua="Mozilla/5.0", ip="17.58.100.4")
    classify()

    hit(client, links[1], ua=BROWSER)
    classify()

    assert _labels() == [
        ("human", ["apple_privacy_proxy", "confirmed_by_human_click"]),
        ("human", []),
    ]
    assert Response.objects.get(kind="opened").label == "human"
    assert Event.objects.filter(type="email_opened").count() == 1


def test_repeated_clicks_and_opens_make_one_response_and_one_event_each(
    sent: Any, client: Client
) -> None:
    _, links, _, pixel = sent

    for _ in range(3):
        hit(client, links[0], ua=BROWSER)
        hit(client, pixel, ua=BROWSER)
    classify()
    hit(client, links[0], ua=BROWSER)
    classify()

    assert TrackingHit.objects.count() == 7
    assert Response.objects.filter(kind="clicked").count() == 1
    assert Response.objects.filter(kind="opened").count() == 1
    assert Event.objects.filter(type="email_clicked").count() == 1
    assert Event.objects.filter(type="email_opened").count() == 1


def test_bursts_are_found_among_thousands_of_hits_without_quadratic_work() -> None:
    """Pure labelling, no database: one address clicking link 0 every 2 seconds is a person;
    the one moment it also hit link 1 within a second is a burst, on both hits."""
    import datetime as dt
    import time

    from campaigns.tracking.labels import Hit, delivery_hits_label

    start = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    hits = [
        Hit(
            i, "click", 0, False, "GET", "203.0.113.1", BROWSER, start + dt.timedelta(seconds=2 * i)
        )
        for i in range(5000)
    ]
    hits.append(Hit(5000, "click", 1, False, "GET", "203.0.113.1", BROWSER, hits[2500].occurred_at))

    began = time.perf_counter()
    delivery_hits_label(hits, sent_at=start - dt.timedelta(hours=1))
    elapsed = time.perf_counter() - began

    burst = {h.id for h in hits if "link_burst" in h.reasons}
    assert burst == {2500, 5000}
    assert sum(h.label == "human" for h in hits) == 4999
    assert elapsed < 2
