"""Chapter 9 of the scripted run: 3,000 simulated subscribers, a subject-line test on 40 % of
them with a 10 % holdout, simulated opens, clicks and orders, then the decision at the
declared horizon and the winner sent to the other 60 %."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from django.core.management.base import OutputWrapper
from django.utils import timezone

from campaigns.abtest.report import campaign_report, report_lines
from campaigns.abtest.winner import campaign_decide
from campaigns.models import Campaign, Delivery, MessageTemplate, Response, Variant
from campaigns.services.launch import campaign_launch
from crm.models import Contact
from crm.services.consent import build_consent_record, consent_record_bulk
from crm.services.contact_input import ContactInput
from crm.services.event_input import EventInput
from crm.services.events import events_ingest
from devtools.demo.report import heading
from devtools.demo.server import wait_idle
from segments.models import Segment
from segments.services import segment_refresh

AB_AUDIENCE = 3000
# Simulated conversion rates: B's personal subject really does better than A's.
AB_TRUE_RATES = {"A": 0.04, "B": 0.09, "holdout": 0.02}


def _simulated_subscribers() -> tuple[int, list[int]]:
    """The subscribers with their email consent; how many were created, and their ids."""
    zones = ["Europe/Paris", "America/New_York", "Asia/Shanghai", "Europe/London", ""]
    contacts = Contact.objects.bulk_create(
        [
            Contact(
                external_id=f"absim-{n:05d}",
                email=f"subscriber{n}@ab-sim.example",
                first_name=f"Sim{n}",
                timezone=zones[n % len(zones)],
            )
            for n in range(AB_AUDIENCE)
        ],
        batch_size=500,
    )
    ids = list(
        Contact.objects.filter(external_id__startswith="absim-").values_list("pk", flat=True)
    )
    consent_record_bulk(
        build_consent_record(
            contact_id=contact_id,
            channel="email",
            status="granted",
            source="import",
            text="Simulated subscriber for the A/B demo.",
            proof={"demo": "ab-simulation"},
        )
        for contact_id in ids
    )
    return len(contacts), ids


def _simulated_audience() -> Segment:
    audience = Segment.objects.create(
        slug="ab-simulated-subscribers",
        name="Simulated subscribers (A/B demo)",
        min_size=100,
        definition={
            "op": "and",
            "conditions": [
                {
                    "type": "attribute",
                    "field": "external_id",
                    "operator": "contains",
                    "value": "absim-",
                }
            ],
        },
    )
    segment_refresh(segment=audience)
    return audience


def _test_campaign(*, audience: Segment, horizon: dt.datetime) -> Campaign:
    """The subject-line test with its two variants, A and B."""
    templates = list(MessageTemplate.objects.filter(name__startswith="November").order_by("name"))
    campaign = Campaign.objects.create(
        slug="subject-line-test",
        name="Subject line test",
        channel="email",
        kind=Campaign.Kind.BROADCAST,
        status=Campaign.Status.SCHEDULED,
        audience=audience,
        holdout_percent=10,
        test_share=40,
        test_horizon_at=horizon,
        goal_event="order_completed",
        attribution_window_days=1,
    )
    for name, template in zip("AB", templates, strict=True):
        Variant.objects.create(campaign=campaign, name=name, template=template)
    return campaign


def _opened_and_clicked(
    delivery: Delivery, *, campaign: Campaign, arm: str, rng: random.Random
) -> list[Response]:
    """Opens and clicks as a provider's webhooks would record them."""
    responses: list[Response] = []
    if delivery.status == Delivery.Status.SENT and rng.random() < 0.45:
        responses.append(
            Response(
                delivery=delivery,
                contact_id=delivery.contact_id,
                campaign=campaign,
                kind=Response.Kind.OPENED,
                provider="simulated",
            )
        )
        if rng.random() < (0.12 if arm == "B" else 0.08):
            responses.append(
                Response(
                    delivery=delivery,
                    contact_id=delivery.contact_id,
                    campaign=campaign,
                    kind=Response.Kind.CLICKED,
                    url="https://shop.example.com/november",
                    provider="simulated",
                )
            )
    return responses


def _simulated_responses(
    *, campaign: Campaign, ids: list[int], rng: random.Random
) -> tuple[list[Response], list[EventInput]]:
    """Opens and clicks, and orders as the shop's API would report them, at the true rates
    above."""
    tested = Delivery.objects.filter(campaign=campaign, occurrence="").select_related("variant")
    external_ids = dict(Contact.objects.filter(pk__in=ids).values_list("pk", "external_id"))
    responses: list[Response] = []
    orders = []
    for delivery in tested:
        arm = "holdout" if delivery.is_holdout else delivery.variant.name  # type: ignore[union-attr]
        responses.extend(_opened_and_clicked(delivery, campaign=campaign, arm=arm, rng=rng))
        if rng.random() < AB_TRUE_RATES[arm]:
            orders.append(
                EventInput(
                    client_id=f"ab-order-{delivery.pk}",
                    type="order_completed",
                    occurred_at=(delivery.sent_at or delivery.created_at)
                    + dt.timedelta(minutes=rng.randint(5, 90)),
                    contact=ContactInput(external_id=external_ids[delivery.contact_id]),
                    properties={"simulated": True},
                    value=Decimal(rng.choice(["19.90", "34.50", "59.00"])),
                    currency="EUR",
                )
            )
    return responses, orders


def _decide(
    *, stdout: OutputWrapper, campaign: Campaign, now: dt.datetime, horizon: dt.datetime
) -> None:
    """The report before the horizon, the decision at it, and the winner's send."""
    report = campaign_report(campaign=campaign, now=now)
    stdout.write(f"before the horizon: {report['horizon']['explanation']}\n")
    decision = campaign_decide(campaign=campaign, now=horizon)
    for line in report_lines(campaign_report(campaign=campaign, now=horizon)):
        stdout.write(f"  {line}\n")
    stdout.write(f"decision: {decision.get_outcome_display()}: {decision.reason}\n")
    wait_idle(stdout=stdout)
    winners = Delivery.objects.filter(campaign=campaign, occurrence="winner")
    chosen = decision.variant.name if decision.variant else "?"
    stdout.write(
        f"the other 60 % got variant {chosen}: {winners.count()} deliveries, "
        f"{winners.filter(status=Delivery.Status.SENT).count()} sent, "
        f"{winners.filter(is_holdout=True).count()} holdout\n"
    )


def demo_ab_test(*, stdout: OutputWrapper) -> None:
    heading(stdout, "9. An A/B test with simulated responses, decided at its horizon")
    rng = random.Random(2026)  # noqa: S311 (a simulation, not security)
    now = timezone.now()
    created, ids = _simulated_subscribers()
    audience = _simulated_audience()
    # The horizon lies at least the attribution window after the send (a shorter one is
    # refused in admin: conversions could not have arrived yet).
    horizon = now + dt.timedelta(days=1, hours=2)
    campaign = _test_campaign(audience=audience, horizon=horizon)
    stdout.write(
        f"{created:,} simulated subscribers; 40 % in the test (A: plain subject, "
        f"B: personal subject), 10 % holdout; horizon {horizon:%Y-%m-%d %H:%M} UTC\n"
    )
    launched = campaign_launch(campaign=campaign)
    stdout.write(f"test launched: {launched.created} deliveries ({launched.holdout} holdout)\n")
    wait_idle(stdout=stdout)

    responses, orders = _simulated_responses(campaign=campaign, ids=ids, rng=rng)
    Response.objects.bulk_create(responses, batch_size=500)
    events_ingest(orders, source="demo-simulation")
    stdout.write(
        f"simulated: {sum(r.kind == Response.Kind.OPENED for r in responses)} opens, "
        f"{sum(r.kind == Response.Kind.CLICKED for r in responses)} clicks, "
        f"{len(orders)} orders\n"
    )
    wait_idle(stdout=stdout)
    _decide(stdout=stdout, campaign=campaign, now=now, horizon=horizon)
