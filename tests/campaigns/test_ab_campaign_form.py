"""The A/B fields of the campaign form: a horizon that leaves no time for conversions to
arrive, or a sample smaller than the planner's figure, is refused when saved, with the error
beside its field and nothing saved."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign, MessageTemplate
from tests.campaigns.ab_helpers import ab_campaign

pytestmark = pytest.mark.django_db

CAMPAIGN_ADD = reverse("admin:campaigns_campaign_add")
START = dt.datetime(2030, 3, 2, 10, 0, tzinfo=dt.UTC)


def when(moment: dt.datetime, field: str) -> dict[str, str]:
    return {f"{field}_0": f"{moment:%Y-%m-%d}", f"{field}_1": f"{moment:%H:%M:%S}"}


def campaign_post(**fields: str) -> dict[str, str]:
    template = MessageTemplate.objects.create(
        name="t", channel="email", subject="s", html_body="<p>x</p>"
    )
    data = {
        "name": "Spring sale",
        "slug": "spring-sale",
        "channel": "email",
        "kind": "broadcast",
        "status": "draft",
        "holdout_percent": "0",
        "purpose": "marketing",
        "priority": "5",
        "defer_when_capped": "on",
        "goal_event": "order_completed",
        "attribution_window_days": "5",
        "test_share": "20",
        "winner_metric": "conversion",
        "winner_confidence": "0.95",
        "attribution": "last_touch",
        "variants-TOTAL_FORMS": "1",
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "1",
        "variants-MAX_NUM_FORMS": "1000",
        "variants-0-name": "A",
        "variants-0-template": str(template.pk),
        "variants-0-weight": "1",
        **when(START, "scheduled_at"),
    }
    data.update(fields)
    return data


def field_errors(response: Any, field: str) -> list[str]:
    assert response.status_code == 200
    errors: list[str] = response.context["adminform"].form.errors.get(field, [])
    return errors


def test_a_horizon_shorter_than_the_attribution_window_is_refused_beside_the_field(
    marketer_client: Client,
) -> None:
    response = marketer_client.post(
        CAMPAIGN_ADD, campaign_post(**when(START + dt.timedelta(days=2), "test_horizon_at"))
    )

    assert field_errors(response, "test_horizon_at") == [
        "The horizon must leave the attribution window of 5 days after the first send "
        "(2030-03-02 10:00 UTC), so conversions can arrive before the test is decided: "
        "2030-03-07 10:00 UTC or later."
    ]
    assert not Campaign.objects.exists()


def test_a_horizon_of_exactly_the_attribution_window_is_saved(marketer_client: Client) -> None:
    response = marketer_client.post(
        CAMPAIGN_ADD, campaign_post(**when(START + dt.timedelta(days=5), "test_horizon_at"))
    )

    assert response.status_code == 302
    assert Campaign.objects.get().test_horizon_at == START + dt.timedelta(days=5)


def test_sending_at_local_time_adds_the_day_the_sends_are_spread_over(
    marketer_client: Client,
) -> None:
    response = marketer_client.post(
        CAMPAIGN_ADD,
        campaign_post(
            send_at_local_time="10:00", **when(START + dt.timedelta(days=5), "test_horizon_at")
        ),
    )

    assert "2030-03-08 10:00 UTC or later" in field_errors(response, "test_horizon_at")[0]
    assert not Campaign.objects.exists()


def test_a_sample_below_the_planners_figure_is_refused_beside_the_field(
    marketer_client: Client,
) -> None:
    response = marketer_client.post(
        CAMPAIGN_ADD,
        campaign_post(
            test_sample_per_variant="500", test_baseline_rate="5", test_minimum_effect="1"
        ),
    )

    assert field_errors(response, "test_sample_per_variant") == [
        "The planner needs 8143 recipients per group to detect +1 points on a baseline of 5 % "
        "(80 % power, two-sided alpha 0.05 over 1 comparison); 500 would decide on noise."
    ]
    assert not Campaign.objects.exists()


def test_a_sample_of_the_planners_figure_is_saved(marketer_client: Client) -> None:
    response = marketer_client.post(
        CAMPAIGN_ADD,
        campaign_post(
            test_sample_per_variant="8143", test_baseline_rate="5", test_minimum_effect="1"
        ),
    )

    assert response.status_code == 302
    assert Campaign.objects.get().test_sample_per_variant == 8143


def test_a_sample_without_a_planned_effect_is_refused(marketer_client: Client) -> None:
    response = marketer_client.post(CAMPAIGN_ADD, campaign_post(test_sample_per_variant="500"))

    assert field_errors(response, "test_baseline_rate") == [
        "Give the baseline rate and the minimum effect you plan to detect: a sample per "
        "variant is checked against the planner's figure for them."
    ]
    assert not Campaign.objects.exists()


def test_the_planner_divides_alpha_among_the_comparisons_with_the_control() -> None:
    campaign = ab_campaign(
        variants=("A", "B", "C"),
        scheduled_at=START,
        test_sample_per_variant=9000,
        test_baseline_rate=5,
        test_minimum_effect=1,
    )

    with pytest.raises(ValidationError) as refused:
        campaign.full_clean()

    assert refused.value.message_dict["test_sample_per_variant"][0].startswith(
        "The planner needs 9861 recipients per group to detect +1 points on a baseline of 5 % "
        "(80 % power, two-sided alpha 0.025 over 2 comparisons)"
    )
