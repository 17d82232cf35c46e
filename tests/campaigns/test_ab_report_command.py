"""`python manage.py campaigns report SLUG [--json]` prints the report's figures."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from campaigns.abtest.winner import campaign_decide
from tests.campaigns.ab_helpers import T0, ab_campaign, bulk_arm

pytestmark = pytest.mark.django_db
DAY = dt.timedelta(days=1)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("campaigns", "report", *args, stdout=out)
    return out.getvalue()


def test_the_json_report_prints_the_figures_and_the_decision() -> None:
    campaign = ab_campaign(test_horizon_at=T0 + 7 * DAY, started_at=T0)
    bulk_arm(campaign, "A", count=800, converted=40, clicked=100)
    bulk_arm(campaign, "B", count=820, converted=66, clicked=101)
    campaign_decide(campaign=campaign, now=T0 + 7 * DAY)

    report = json.loads(run(campaign.slug, "--json"))

    arms = {arm["name"]: arm for arm in report["arms"]}
    assert (arms["B"]["assigned"], arms["B"]["conversions"], arms["B"]["revenue"]) == (
        820,
        66,
        "1320.00",
    )
    assert report["control"] == "A"
    [b] = report["comparisons"]
    _z, p_value = proportions_ztest([66, 40], [820, 800])
    low, high = confint_proportions_2indep(66, 820, 40, 800, method="newcomb", compare="diff")
    assert b["p_value"] == pytest.approx(p_value)
    assert b["difference_ci"] == pytest.approx([low, high])
    assert report["decision"]["variant"] == "B"
    assert report["decision"]["outcome"] == "winner"
    assert report["srm"]["warning"] is False


def test_the_text_report_shows_the_table_and_the_open_rate_caveat() -> None:
    campaign = ab_campaign(test_horizon_at=T0 + 7 * DAY)
    bulk_arm(campaign, "A", count=100, converted=4)
    bulk_arm(campaign, "B", count=100, converted=9)

    text = run(campaign.slug)

    assert "B vs A:" in text
    assert "inflated by mail privacy proxies" in text
    assert "Horizon:" in text


def test_the_report_warns_of_a_sample_ratio_mismatch() -> None:
    campaign = ab_campaign()
    bulk_arm(campaign, "A", count=1000, converted=10)
    bulk_arm(campaign, "B", count=820, converted=10)

    assert "WARNING sample ratio mismatch" in run(campaign.slug)
    assert json.loads(run(campaign.slug, "--json"))["srm"]["warning"] is True


def test_an_unknown_slug_is_named() -> None:
    with pytest.raises(CommandError, match="No campaign with slug 'nope'"):
        run("nope", "--json")
