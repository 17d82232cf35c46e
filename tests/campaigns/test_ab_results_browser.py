"""The A/B results page in admin: a real browser shows the table and charts (with a
screenshot), a marketer reads it, names are escaped, the SRM warning is prominent, the CSV
holds the report's figures and the planner answers."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns.abtest.report import campaign_report
from campaigns.abtest.winner import campaign_decide
from campaigns.models import Campaign, Variant
from tests.campaigns.ab_helpers import ab_campaign, bulk_arm

DAY = dt.timedelta(days=1)
EVIL = '<script>alert("x")</script>'


def decided_campaign() -> Campaign:
    start = timezone.now() - 10 * DAY
    campaign = ab_campaign(holdout=20, test_horizon_at=start + 7 * DAY, started_at=start)
    bulk_arm(campaign, "holdout", count=300, converted=15, sent_at=start)
    bulk_arm(campaign, "A", count=600, converted=60, clicked=90, sent_at=start)
    bulk_arm(campaign, "B", count=600, converted=30, clicked=70, sent_at=start)
    campaign_decide(campaign=campaign, enqueue=False)
    return campaign


def results_url(campaign: Campaign) -> str:
    return reverse("admin:campaigns_campaign_results", args=[campaign.pk])


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_results_page_shows_the_table_and_charts_in_a_browser(
    live_server: Any, page: Any, tmp_path: Path
) -> None:
    User.objects.create_superuser("ada", "ada@example.com", "correct-horse-42")
    campaign = decided_campaign()
    page.goto(f"{live_server.url}/admin/login/?next={results_url(campaign)}")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "correct-horse-42")
    page.click("input[type=submit]")
    page.wait_for_selector("#ab-groups")
    page.set_viewport_size({"width": 1400, "height": 1600})
    shot = tmp_path / "ab-results.png"
    page.screenshot(path=str(shot), full_page=True)

    assert shot.stat().st_size > 10_000
    groups = page.locator("#ab-groups tbody tr")
    assert groups.count() == 3
    assert page.inner_text("#ab-groups tbody tr[data-group='A'] th") == "A"
    assert "10.00 %" in page.inner_text("#ab-groups tbody tr[data-group='A']")
    assert page.locator("svg.ab-rates circle").count() == 3
    assert page.locator("svg.ab-cumulative polyline").count() == 3
    assert "Decision" in page.inner_text("#ab-decision")
    assert "final figures" in page.inner_text("#ab-horizon")
    assert "mail privacy proxies" in page.inner_text("#ab-results")


@pytest.mark.django_db
def test_the_change_page_links_to_the_results(marketer_client: Client) -> None:
    campaign = ab_campaign()
    response = marketer_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert results_url(campaign) in response.content.decode()


@pytest.mark.django_db
def test_a_marketer_reads_the_results_with_names_escaped(marketer_client: Client) -> None:
    campaign = ab_campaign(variants=("A", EVIL), test_horizon_at=timezone.now() + DAY)
    bulk_arm(campaign, "A", count=50, converted=5)
    bulk_arm(campaign, EVIL, count=50, converted=7)

    response = marketer_client.get(results_url(campaign))

    body = response.content.decode()
    assert response.status_code == 200
    assert EVIL not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
    assert "Interim, do not act" in body


@pytest.mark.django_db
def test_a_sample_ratio_mismatch_is_shown_at_the_top(marketer_client: Client) -> None:
    campaign = ab_campaign()
    bulk_arm(campaign, "A", count=1000, converted=10)
    bulk_arm(campaign, "B", count=800, converted=10)

    body = marketer_client.get(results_url(campaign)).content.decode()

    assert 'id="ab-srm-warning"' in body
    assert body.index("ab-srm-warning") < body.index('id="ab-groups"')
    assert "Sample ratio mismatch" in body


@pytest.mark.django_db
def test_the_csv_export_holds_the_report_figures(marketer_client: Client) -> None:
    campaign = decided_campaign()
    Variant.objects.filter(campaign=campaign, name="B").update(name="=HYPERLINK(1)")
    report = campaign_report(campaign=campaign)

    response = marketer_client.get(
        reverse("admin:campaigns_campaign_results_csv", args=[campaign.pk])
    )

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["group"] for r in rows] == ["holdout", "A", "'=HYPERLINK(1)"]
    a = rows[1]
    comparison = next(c for c in report["comparisons"] if c["arm"] == "A")
    assert (a["assigned"], a["conversions"], a["unique_clicks"]) == ("600", "60", "90")
    assert float(a["p_value"]) == pytest.approx(comparison["p_value"])
    assert float(a["difference_ci_low"]) == pytest.approx(comparison["difference_ci"][0])
    assert a["control"] == "holdout"


@pytest.mark.django_db
def test_the_planner_gives_recipients_per_group(marketer_client: Client) -> None:
    campaign = ab_campaign()
    response = marketer_client.get(
        results_url(campaign),
        {"baseline": "5", "mde": "1", "mde_kind": "absolute", "power": "80", "alpha": "5"},
    )
    assert "<strong>8143</strong> recipients per group" in response.content.decode()


@pytest.mark.django_db
def test_the_planner_names_an_impossible_input(marketer_client: Client) -> None:
    campaign = ab_campaign()
    response = marketer_client.get(
        results_url(campaign),
        {"baseline": "95", "mde": "10", "mde_kind": "absolute", "power": "80", "alpha": "5"},
    )
    assert "outside 0 to 1" in response.content.decode()


@pytest.mark.django_db
def test_someone_without_campaign_access_gets_no_results() -> None:
    user = User.objects.create_user("eve", "eve@example.com", "x", is_staff=True)
    client = Client()
    client.force_login(user)
    campaign = ab_campaign()
    assert client.get(results_url(campaign)).status_code == 403
