"""Per-arm metrics of a campaign's A/B test, aggregated in SQL: three GROUP BY queries over
the campaign's test deliveries, whatever their number.

- An arm is a variant, or the holdout. The test deliveries are every delivery of the campaign
  except the winner send to the rest of the audience (occurrence "winner").
- Counts are per delivery (unique): a delivery opened five times counts once. Opens and
  clicks are the human ones only: scanner hits, privacy-proxy opens and ESP reports of a
  campaign that tracks its own are never counted (docs/tracking.md).
- Conversions: the campaign's goal event (crm Event of type `goal_event`) by the delivery's
  contact at or after the delivery's reference time and before reference + the attribution
  window. The reference time is `sent_at` for a message that went out, else `created_at`: the
  moment the launch assigned the contact, which is when a holdout row would have been sent
  (holdout rows are never sent) and also used for rows held back (no consent, ...), so that
  every assigned contact is measured the same way (intention to treat).
- Last touch (the default): a goal event counts only for the latest touch of the contact
  before it, across campaigns; a touch is any delivery that was sent (any campaign), and the
  campaign's own test deliveries. Any touch: it counts for every test delivery of the campaign
  whose window holds it.
- Revenue is the sum of Event.value over the attributed goal events.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import (
    Count,
    DateTimeField,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce

from campaigns.models import Campaign, Delivery, Response, Variant
from campaigns.services.assignment import WINNER_OCCURRENCE
from crm.models import Event

HOLDOUT = "holdout"
_R = Response.Kind
_HUMAN = Response.Label.HUMAN
CENT = Decimal("0.01")
PENDING = (Delivery.Status.QUEUED, Delivery.Status.SENDING, Delivery.Status.DEFERRED)

ArmKey = tuple[int | None, bool]  # (variant id, is_holdout)


@dataclass
class ArmMetrics:
    name: str
    variant_id: int | None
    is_holdout: bool
    share: float  # configured share of the test audience, 0..1
    assigned: int = 0
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    conversions: int = 0
    revenue: Decimal = field(default_factory=lambda: Decimal("0.00"))
    unsubscribed: int = 0
    bounced: int = 0
    complained: int = 0
    pending: int = 0  # queued, sending or deferred: not yet decided whether it goes out
    first_reference: dt.datetime | None = None
    last_reference: dt.datetime | None = None


@dataclass
class CampaignMetrics:
    arms: list[ArmMetrics]
    # Cumulative converted deliveries per arm name, one entry per day with a conversion.
    daily: list[tuple[dt.date, dict[str, int]]]


def test_deliveries(campaign: Campaign) -> QuerySet[Delivery]:
    return Delivery.objects.filter(campaign_id=campaign.pk).exclude(occurrence=WINNER_OCCURRENCE)


def _arms(campaign: Campaign) -> dict[ArmKey, ArmMetrics]:
    """Every configured arm, even one nobody was assigned to yet (an SRM of its own)."""
    variants = list(Variant.objects.filter(campaign_id=campaign.pk).order_by("pk"))
    holdout = float(campaign.holdout_percent) / 100
    total_weight = sum(v.weight for v in variants) or 1
    arms: dict[ArmKey, ArmMetrics] = {}
    if holdout > 0:
        arms[(None, True)] = ArmMetrics(
            name=HOLDOUT, variant_id=None, is_holdout=True, share=holdout
        )
    for variant in variants:
        arms[(variant.pk, False)] = ArmMetrics(
            name=variant.name,
            variant_id=variant.pk,
            is_holdout=False,
            share=(1 - holdout) * variant.weight / total_weight,
        )
    return arms


def _arm(arms: dict[ArmKey, ArmMetrics], variant_id: int | None, is_holdout: bool) -> ArmMetrics:
    key = (None, True) if is_holdout else (variant_id, False)
    if key not in arms:
        # A variant deleted after launch, or a holdout share set to 0 after launch: still shown.
        arms[key] = ArmMetrics(
            name=HOLDOUT if is_holdout else f"variant {variant_id}",
            variant_id=variant_id,
            is_holdout=is_holdout,
            share=0.0,
        )
    return arms[key]


def _reference() -> Coalesce:
    return Coalesce("sent_at", "created_at")


def _goal_events(campaign: Campaign, *, first: dt.datetime, last: dt.datetime) -> QuerySet[Event]:
    """The campaign's goal events that any test delivery's window can hold (between the
    earliest reference and the latest reference + the window), each with conv_at, conv_value
    and window_start = conv_at - window: a delivery's window holds the event when
    window_start < reference <= conv_at. Filtering events by type and time first keeps the
    join small (an order is rarer than a delivery, and most of history is outside the test)."""
    window = dt.timedelta(days=campaign.attribution_window_days)
    events = (
        Event.objects.filter(
            type=campaign.goal_event, occurred_at__gte=first, occurred_at__lt=last + window
        )
        .order_by()
        .annotate(
            conv_at=F("occurred_at"),
            conv_value=F("value"),
            window_start=ExpressionWrapper(F("occurred_at") - window, output_field=DateTimeField()),
        )
    )
    if campaign.attribution == Campaign.Attribution.LAST_TOUCH:
        # The contact's latest touch at or before the event (ties by id): any delivery that
        # was sent (any campaign), and this campaign's own deliveries. The event belongs to it
        # when it is one of this campaign's test deliveries and its window holds the event.
        last_touch = (
            Delivery.objects.filter(contact_id=OuterRef("contact_id"))
            .filter(Q(sent_at__isnull=False) | Q(campaign_id=campaign.pk))
            .annotate(touch_at=_reference())
            .filter(touch_at__lte=OuterRef("occurred_at"))
            .order_by("-touch_at", "-pk")
            .values("pk")[:1]
        )
        events = events.annotate(touch_id=Subquery(last_touch))
    return events


def _delivery_counts(campaign: Campaign, arms: dict[ArmKey, ArmMetrics]) -> None:
    rows = (
        test_deliveries(campaign)
        .order_by()
        .values("variant_id", "is_holdout")
        .annotate(
            assigned=Count("pk"),
            sent=Count("pk", filter=Q(sent_at__isnull=False)),
            delivered=Count(
                "pk", filter=Q(delivered_at__isnull=False) | Q(status=Delivery.Status.DELIVERED)
            ),
            pending=Count("pk", filter=Q(status__in=PENDING)),
            first_reference=Min(_reference()),
            last_reference=Max(_reference()),
        )
    )
    for row in rows:
        arm = _arm(arms, row["variant_id"], row["is_holdout"])
        arm.assigned, arm.sent, arm.delivered = row["assigned"], row["sent"], row["delivered"]
        arm.pending, arm.last_reference = row["pending"], row["last_reference"]
        arm.first_reference = row["first_reference"]


def _response_counts(campaign: Campaign, arms: dict[ArmKey, ArmMetrics]) -> None:
    def unique(*kinds: str) -> Count:
        return Count("delivery_id", distinct=True, filter=Q(kind__in=kinds))

    def human(kind: str) -> Count:
        # Scanners, privacy proxies and ESP reports superseded by own tracking never count.
        return Count("delivery_id", distinct=True, filter=Q(kind=kind, label=_HUMAN))

    rows = (
        Response.objects.filter(campaign_id=campaign.pk, delivery__isnull=False)
        .exclude(delivery__occurrence=WINNER_OCCURRENCE)
        .order_by()
        .values("delivery__variant_id", "delivery__is_holdout")
        .annotate(
            opened=human(_R.OPENED),
            clicked=human(_R.CLICKED),
            unsubscribed=unique(_R.UNSUBSCRIBED),
            bounced=unique(_R.BOUNCED_HARD, _R.FAILED),
            complained=unique(_R.COMPLAINED),
        )
    )
    for row in rows:
        arm = _arm(arms, row["delivery__variant_id"], row["delivery__is_holdout"])
        for name in ("opened", "clicked", "unsubscribed", "bounced", "complained"):
            setattr(arm, name, row[name])


def _conversion_days(
    campaign: Campaign, arms: dict[ArmKey, ArmMetrics]
) -> list[tuple[int | None, bool, str, int, Any]]:
    """(variant id, is_holdout, day of first conversion, converted deliveries, revenue): the
    per-delivery aggregate (pairs of a test delivery and an attributed goal event) wrapped in
    one more GROUP BY, so each delivery counts once, on the day of its first attributed goal
    event."""
    firsts = [a.first_reference for a in arms.values() if a.first_reference]
    lasts = [a.last_reference for a in arms.values() if a.last_reference]
    if not firsts or not lasts:
        return []
    events = _goal_events(campaign, first=min(firsts), last=max(lasts))
    q = connection.ops.quote_name
    if campaign.attribution == Campaign.Attribution.LAST_TOUCH:
        key = "touch_id"
        on = f"d.id = goal.{q('touch_id')}"  # that touch is at or before the event already
    else:
        key = "contact_id"
        on = (
            f"d.contact_id = goal.{q('contact_id')} "
            f"AND COALESCE(d.sent_at, d.created_at) <= goal.{q('conv_at')}"
        )
    goal, params = events.values(
        key, "conv_at", "conv_value", "window_start"
    ).query.sql_with_params()
    # The goal events (with their last touch) as a MATERIALIZED CTE: computed once, one
    # index probe per event. Inlined, PostgreSQL turned the touch subquery into a hash-join
    # key and ran it twice per event against a hash of every delivery.
    sql = (
        f"WITH goal AS MATERIALIZED ({goal}) "  # noqa: S608
        "SELECT variant_id, is_holdout, DATE(first_at) AS day, COUNT(*), SUM(revenue) "
        "FROM (SELECT d.id, d.variant_id AS variant_id, d.is_holdout AS is_holdout, "
        f"MIN(goal.{q('conv_at')}) AS first_at, SUM(goal.{q('conv_value')}) AS revenue "
        f"FROM goal JOIN {q(Delivery._meta.db_table)} d ON {on} "
        "WHERE d.campaign_id = %s AND NOT d.occurrence = %s "
        f"AND COALESCE(d.sent_at, d.created_at) > goal.{q('window_start')} "
        "GROUP BY d.id, d.variant_id, d.is_holdout) AS converted "
        "GROUP BY variant_id, is_holdout, DATE(first_at) ORDER BY day"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, campaign.pk, WINNER_OCCURRENCE])
        return [
            (variant_id, bool(is_holdout), str(day), int(n), revenue)
            for variant_id, is_holdout, day, n, revenue in cursor.fetchall()
        ]


def campaign_metrics(*, campaign: Campaign) -> CampaignMetrics:
    arms = _arms(campaign)
    _delivery_counts(campaign, arms)
    _response_counts(campaign, arms)
    running: dict[str, int] = {arm.name: 0 for arm in arms.values()}
    by_day: dict[str, dict[str, int]] = {}
    for variant_id, is_holdout, day, n, revenue in _conversion_days(campaign, arms):
        arm = _arm(arms, variant_id, is_holdout)
        arm.conversions += n
        arm.revenue += Decimal(str(revenue or 0)).quantize(CENT)
        running[arm.name] = running.get(arm.name, 0) + n
        by_day[day] = dict(running)
    daily = [(dt.date.fromisoformat(day), counts) for day, counts in sorted(by_day.items())]
    ordered = sorted(arms.values(), key=lambda a: (not a.is_holdout, a.variant_id or 0))
    return CampaignMetrics(arms=ordered, daily=daily)
