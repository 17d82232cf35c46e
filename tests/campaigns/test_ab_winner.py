"""The automatic winner: the test share launched alone, nothing decided before the declared
horizon, the winner (after Holm correction) or the default at the horizon, recorded once, and
the rest of the audience sent the chosen variant."""

from __future__ import annotations

import datetime as dt
import email
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from campaigns.abtest.report import campaign_report
from campaigns.abtest.winner import DecisionError, campaign_decide, campaigns_decide_due
from campaigns.models import ABDecision, Campaign, Delivery
from campaigns.services.assignment import in_test_share
from campaigns.services.launch import DispatchError, campaign_launch
from campaigns.services.send import campaign_drain
from crm.models import Contact, Event
from tests.campaigns.ab_helpers import T0, ab_campaign, bulk_arm, variant
from tests.campaigns.dispatch_helpers import grant, segment_of

pytestmark = pytest.mark.django_db
DAY = dt.timedelta(days=1)


def audience(count: int, *, consent: bool = False) -> list[Contact]:
    contacts = Contact.objects.bulk_create(
        Contact(email=f"member{i}@example.com", first_name=f"M{i}") for i in range(count)
    )
    if consent:
        for contact in contacts:
            grant(contact)
    return contacts


def subjects(outbox: Path) -> Counter[str]:
    return Counter(
        str(email.message_from_bytes(path.read_bytes())["Subject"])
        for path in (outbox / "email").glob("*.eml")
    )


def test_launch_writes_deliveries_for_the_test_share_only() -> None:
    contacts = audience(300)
    campaign = ab_campaign(
        audience=segment_of(contacts), test_share=20, test_horizon_at=T0 + 7 * DAY
    )

    result = campaign_launch(campaign=campaign, enqueue=False)

    expected = {
        c.pk
        for c in contacts
        if in_test_share(campaign_id=campaign.pk, contact_id=c.pk, test_share=20)
    }
    written = set(Delivery.objects.filter(campaign=campaign).values_list("contact_id", flat=True))
    assert written == expected
    assert result.created == len(expected)
    assert 30 < len(expected) < 90


def test_a_test_share_without_a_declared_horizon_is_refused() -> None:
    campaign = ab_campaign(audience=segment_of(audience(3)), test_share=20)

    with pytest.raises(DispatchError, match="declares no test horizon"):
        campaign_launch(campaign=campaign, enqueue=False)

    assert not Delivery.objects.filter(campaign=campaign).exists()


def test_nothing_is_decided_before_the_horizon_and_the_report_says_interim() -> None:
    campaign = ab_campaign(test_horizon_at=T0 + 7 * DAY, started_at=T0)
    bulk_arm(campaign, "A", count=200, converted=5)
    bulk_arm(campaign, "B", count=200, converted=60)

    assert campaigns_decide_due(now=T0 + 6 * DAY) == []
    with pytest.raises(DecisionError, match="Interim, do not act"):
        campaign_decide(campaign=campaign, now=T0 + 6 * DAY)

    report = campaign_report(campaign=campaign, now=T0 + 6 * DAY)
    assert report["horizon"]["state"] == "interim"
    assert not ABDecision.objects.exists()


def test_at_the_horizon_the_winner_is_sent_to_the_rest_of_the_audience(outbox: Path) -> None:
    contacts = audience(60, consent=True)
    horizon = timezone.now() + 6 * DAY
    campaign = ab_campaign(audience=segment_of(contacts), test_share=50, test_horizon_at=horizon)
    campaign_launch(campaign=campaign, enqueue=False)
    campaign_drain(campaign=campaign)
    test_rows = Delivery.objects.filter(campaign=campaign, occurrence="")
    b_test = list(test_rows.filter(variant__name="B"))
    Event.objects.bulk_create(
        Event(
            contact_id=row.contact_id,
            type="order_completed",
            occurred_at=(row.sent_at or T0) + dt.timedelta(hours=2),
            value=25,
        )
        for row in b_test
    )

    decision = campaign_decide(campaign=campaign, now=horizon + dt.timedelta(minutes=1))
    campaign_drain(campaign=campaign)

    assert decision.outcome == ABDecision.Outcome.WINNER
    assert decision.variant == variant(campaign, "B")
    assert decision.reason.startswith("B beats A on conversion")
    assert decision.numbers["comparisons"][0]["significant"] is True
    rest = Delivery.objects.filter(campaign=campaign, occurrence="winner")
    assert rest.count() == 60 - test_rows.count() == decision.remainder_deliveries
    assert set(rest.values_list("variant__name", "status")) == {("B", Delivery.Status.SENT)}
    assert subjects(outbox) == {
        "Subject A": test_rows.filter(variant__name="A").count(),
        "Subject B": len(b_test) + rest.count(),
    }


def test_an_inconclusive_test_sends_the_configured_default() -> None:
    contacts = audience(80)
    horizon = T0 + 7 * DAY
    campaign = ab_campaign(audience=segment_of(contacts), test_share=50, test_horizon_at=horizon)
    campaign.default_variant = variant(campaign, "B")
    campaign.save()
    campaign_launch(campaign=campaign, enqueue=False, now=T0)

    [decision] = campaigns_decide_due(now=horizon)

    assert decision.outcome == ABDecision.Outcome.DEFAULT
    assert decision.variant == variant(campaign, "B")
    assert decision.reason.startswith("Inconclusive at 0.95 confidence")
    rest = Delivery.objects.filter(campaign=campaign, occurrence="winner")
    assert rest.count() == 80 - Delivery.objects.filter(campaign=campaign, occurrence="").count()
    assert set(rest.values_list("variant__name", flat=True)) == {"B"}


def test_when_the_variant_is_worse_the_reason_names_the_control_as_the_leader() -> None:
    campaign = ab_campaign(test_horizon_at=T0 + 7 * DAY, started_at=T0)
    bulk_arm(campaign, "A", count=12, converted=2)
    bulk_arm(campaign, "B", count=12, converted=0)

    decision = campaign_decide(campaign=campaign, now=T0 + 7 * DAY)

    assert decision.outcome == ABDecision.Outcome.DEFAULT
    assert decision.reason.startswith(
        "Inconclusive at 0.95 confidence (the control A leads on conversion: 16.67% against "
        "0.00% for B, A ahead by 16.67 points (95% CI "
    )
    assert "best was B" not in decision.reason
    assert "-16.67" not in decision.reason and "\u221216.67" not in decision.reason
    assert decision.reason.endswith("): sending the default variant A.")


def test_when_a_variant_leads_without_significance_the_reason_names_it_and_its_advantage() -> None:
    campaign = ab_campaign(test_horizon_at=T0 + 7 * DAY, started_at=T0)
    bulk_arm(campaign, "A", count=20, converted=2)
    bulk_arm(campaign, "B", count=20, converted=3)

    decision = campaign_decide(campaign=campaign, now=T0 + 7 * DAY)

    assert decision.outcome == ABDecision.Outcome.DEFAULT
    assert decision.reason.startswith(
        "Inconclusive at 0.95 confidence (B leads on conversion: 15.00% against 10.00% for "
        "the control A, B ahead by 5.00 points (95% CI -"
    )


def test_tied_groups_are_reported_as_tied_not_as_one_leading() -> None:
    campaign = ab_campaign(test_horizon_at=T0 + 7 * DAY, started_at=T0)
    bulk_arm(campaign, "A", count=10, converted=1)
    bulk_arm(campaign, "B", count=10, converted=1)

    decision = campaign_decide(campaign=campaign, now=T0 + 7 * DAY)

    assert decision.reason == (
        "Inconclusive at 0.95 confidence (no group leads on conversion: the control A and B "
        "are tied at 10.00%): sending the default variant A."
    )


def test_a_control_significantly_better_than_every_variant_is_not_called_inconclusive() -> None:
    campaign = ab_campaign(test_horizon_at=T0 + 7 * DAY, started_at=T0)
    bulk_arm(campaign, "A", count=200, converted=60)
    bulk_arm(campaign, "B", count=200, converted=10)

    decision = campaign_decide(campaign=campaign, now=T0 + 7 * DAY)

    assert decision.outcome == ABDecision.Outcome.DEFAULT
    assert decision.reason.startswith(
        "No variant beats the control at 0.95 confidence (the control A leads on conversion: "
        "30.00% against 5.00% for B, A ahead by 25.00 points (95% CI +"
    )


def test_holm_correction_keeps_a_lucky_variant_among_several_from_winning() -> None:
    campaign = ab_campaign(
        variants=("A", "B", "C", "D"), test_horizon_at=T0 + 7 * DAY, started_at=T0
    )
    bulk_arm(campaign, "A", count=1000, converted=100)
    bulk_arm(campaign, "B", count=1000, converted=128)
    bulk_arm(campaign, "C", count=1000, converted=100)
    bulk_arm(campaign, "D", count=1000, converted=100)

    decision = campaign_decide(campaign=campaign, now=T0 + 7 * DAY)

    b = next(c for c in decision.numbers["comparisons"] if c["arm"] == "B")
    assert b["p_value"] < 0.05 < b["p_value_holm"]
    assert decision.outcome == ABDecision.Outcome.DEFAULT
    assert decision.variant == variant(campaign, "A")


def test_with_a_holdout_each_variant_is_compared_with_sending_nothing() -> None:
    campaign = ab_campaign(holdout=20, test_horizon_at=T0 + 7 * DAY, started_at=T0)
    bulk_arm(campaign, "holdout", count=1000, converted=50)
    bulk_arm(campaign, "A", count=2000, converted=180)
    bulk_arm(campaign, "B", count=2000, converted=110)

    decision = campaign_decide(campaign=campaign, now=T0 + 7 * DAY)

    assert decision.numbers["control"] == "holdout"
    assert [c["arm"] for c in decision.numbers["comparisons"]] == ["A", "B"]
    assert decision.outcome == ABDecision.Outcome.WINNER
    assert decision.variant == variant(campaign, "A")


def test_a_sample_horizon_waits_for_the_attribution_window_after_the_last_message() -> None:
    campaign = ab_campaign(test_sample_per_variant=50, started_at=T0)
    bulk_arm(campaign, "A", count=60, converted=3)
    bulk_arm(campaign, "B", count=60, converted=4)

    early = campaign_report(campaign=campaign, now=T0 + 2 * DAY)["horizon"]
    late = campaign_report(campaign=campaign, now=T0 + 5 * DAY + dt.timedelta(minutes=1))
    short = ab_campaign(test_sample_per_variant=100, started_at=T0)
    bulk_arm(short, "A", count=60, converted=3)

    assert early["state"] == "interim" and "attribution window" in early["explanation"]
    assert late["horizon"]["state"] == "final"
    assert "groups below 100: A, B" in campaign_report(campaign=short)["horizon"]["explanation"]


def test_the_sweep_decides_once_and_sends_the_rest_once(settings: Any) -> None:
    contacts = audience(40)
    campaign = ab_campaign(
        audience=segment_of(contacts), test_share=50, test_horizon_at=T0 + 7 * DAY
    )
    campaign_launch(campaign=campaign, enqueue=False, now=T0)

    first = campaigns_decide_due(now=T0 + 7 * DAY)
    second = campaigns_decide_due(now=T0 + 8 * DAY)

    assert len(first) == 1 and second == []
    assert ABDecision.objects.filter(campaign=campaign).count() == 1
    decision = ABDecision.objects.get(campaign=campaign)
    assert decision.remainder_sent_at == T0 + 7 * DAY
    rest = Delivery.objects.filter(campaign=campaign, occurrence="winner").count()
    assert (
        rest
        == decision.remainder_deliveries
        == 40 - Delivery.objects.filter(campaign=campaign, occurrence="").count()
    )


def test_a_campaign_that_is_not_an_a_b_test_is_never_decided() -> None:
    campaign = ab_campaign(started_at=T0)
    bulk_arm(campaign, "A", count=10, converted=1)

    assert campaigns_decide_due(now=T0 + 30 * DAY) == []
    assert campaign_report(campaign=campaign)["horizon"]["state"] == "none"
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENDING
