"""In chromium: a tracked link taken from a sent .eml lands on its target with the UTM
parameters, and the campaign's results page shows people and machines side by side."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, TrackingHit
from tests.campaigns.tracking_helpers import classify, send_tracked, sent_ago, tracked_links

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_tracked_link_from_an_eml_lands_on_the_target_with_utm(
    live_server: Any, page: Any, outbox: Path, settings: Any, tmp_path: Path
) -> None:
    settings.PUBLIC_BASE_URL = live_server.url
    html = (
        f'<html><body><p><a href="{live_server.url}/healthz?from=mail">Status</a></p></body></html>'
    )
    delivery, message = send_tracked(outbox, html=html)
    sent_ago(delivery, 120)
    [link] = tracked_links(message)
    assert link.startswith(f"{live_server.url}/t/c/")

    page.goto(link)
    page.wait_for_load_state()
    page.screenshot(path=str(tmp_path / "landed.png"))

    landed = urlsplit(page.url)
    assert landed.path == "/healthz"
    query = parse_qs(landed.query)
    assert query["from"] == ["mail"]
    assert query["utm_source"] == ["cadence"]
    assert query["utm_medium"] == ["email"]
    assert query["utm_campaign"] == [delivery.campaign.slug]
    assert query["utm_content"] == ["A"]
    assert "cadence_cid" in query
    assert '"ok"' in page.content()
    assert TrackingHit.objects.get().method == "GET"


def test_the_results_page_shows_human_and_scanner_counts(
    live_server: Any, page: Any, outbox: Path, settings: Any, tmp_path: Path
) -> None:
    settings.PUBLIC_BASE_URL = live_server.url
    delivery, message = send_tracked(outbox)
    sent_ago(delivery, 2)
    links = tracked_links(message)
    scanner = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0) Chrome/119 Safari/537.36"}
    for link in links:  # a gateway following every link on delivery
        page.request.get(link, headers=scanner, max_redirects=0)
    classify()
    # Five minutes later (the clock moved back instead): the person, from the same network.
    sent_ago(delivery, 300)
    TrackingHit.objects.update(occurred_at=timezone.now() - dt.timedelta(seconds=299))
    person = {"User-Agent": "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Version/17 Safari"}
    page.request.get(links[0], headers=person, max_redirects=0)
    classify()

    User.objects.create_superuser("ada", "ada@example.com", "correct-horse-42")
    url = reverse("admin:campaigns_campaign_results", args=[delivery.campaign_id])
    page.goto(f"{live_server.url}/admin/login/?next={url}")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "correct-horse-42")
    page.click("input[type=submit]")
    page.wait_for_selector("#tracking-counts")
    page.set_viewport_size({"width": 1400, "height": 1400})
    shot = tmp_path / "tracking-counts.png"
    page.locator("#ab-results").screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000

    clicks = page.locator("#tracking-counts tr[data-row='clicks']")
    assert clicks.locator("td.human").inner_text() == "1"
    assert clicks.locator("td.machine").inner_text() == "1"
    assert "Own tracking is on" in page.inner_text("#ab-results")


def test_a_marketer_turns_tracking_off_in_the_campaign_form(
    live_server: Any, page: Any, outbox: Path, tmp_path: Path
) -> None:
    delivery, _ = send_tracked(outbox)
    campaign = Campaign.objects.get(pk=delivery.campaign_id)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.DRAFT)
    User.objects.create_superuser("ada", "ada@example.com", "correct-horse-42")
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    page.goto(f"{live_server.url}/admin/login/?next={url}")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "correct-horse-42")
    page.click("input[type=submit]")
    page.wait_for_selector("#id_track_opens_clicks")
    page.set_viewport_size({"width": 1400, "height": 2400})
    shot = tmp_path / "campaign-form.png"
    page.screenshot(path=str(shot), full_page=True)

    assert page.is_checked("#id_track_opens_clicks")
    assert "rewrite the links" in page.inner_text("body").lower()
    page.uncheck("#id_track_opens_clicks")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist")

    campaign.refresh_from_db()
    assert campaign.track_opens_clicks is False
    assert campaign.utm_parameters is True
