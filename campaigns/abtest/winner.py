"""The automatic winner: at the campaign's declared horizon, and only then, the variant that
beats the control with the configured confidence (Holm-corrected) is chosen, else the default
variant; the decision is recorded once with the numbers behind it, and the rest of a
broadcast's audience (outside the test share) is launched with the chosen variant."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.abtest.report import (
    DISPLAY_CONFIDENCE,
    ComparisonReport,
    Report,
    campaign_report,
)
from campaigns.models import ABDecision, Campaign, Variant

logger = logging.getLogger(__name__)


class DecisionError(Exception):
    """The test cannot be decided now; the message says why."""


@dataclass(frozen=True)
class Choice:
    outcome: str
    variant_name: str
    reason: str


def _points(difference: float) -> str:
    return f"{abs(difference) * 100:.2f} points"


def _interval(low: float, high: float) -> str:
    return f"{DISPLAY_CONFIDENCE:.0%} CI {low * 100:+.2f} to {high * 100:+.2f}"


def _holm(comparison: ComparisonReport, count: int) -> str:
    p = comparison["p_value_holm"]
    if p is None:
        return "no p-value (no variation to test)"
    return f"p = {p:.4g} after Holm correction over {count} comparison{'s' if count != 1 else ''}"


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def choose(*, report: Report, default_name: str) -> Choice:
    """Pure: the significant comparison with the highest rate wins (ties: the first variant);
    with none, the default. `significant` already means a positive difference with a
    Holm-adjusted p below 1 - winner_confidence.

    The reason names the group with the higher estimate as the leader (a variant, or the
    control when every variant is below it) and states the leader's advantage as a positive
    number of points with its interval, oriented the same way."""
    comparisons = report["comparisons"]
    confidence = report["winner_confidence"]
    alpha = 1 - confidence
    metric = report["metric"]
    count = len(comparisons)
    winners = [c for c in comparisons if c["significant"]]
    if winners:
        best = max(winners, key=lambda c: c["rate"])
        low, high = best["difference_ci"]
        reason = (
            f"{best['arm']} beats {best['control']} on {metric}: "
            f"{best['rate']:.2%} against {best['control_rate']:.2%} "
            f"(+{_points(best['difference'])}, {_interval(low, high)}), "
            f"{_holm(best, count)}, below {alpha:.3g}."
        )
        return Choice(outcome=ABDecision.Outcome.WINNER, variant_name=best["arm"], reason=reason)
    verdict = f"Inconclusive at {confidence:.3g} confidence"
    if not comparisons:
        detail = "nothing to compare"
    else:
        # The variant with the highest estimate (the first on ties) against the control.
        top = max(comparisons, key=lambda c: c["rate"])
        control = top["control"]
        low, high = top["difference_ci"]
        if top["difference"] > 0:
            detail = (
                f"{top['arm']} leads on {metric}: {top['rate']:.2%} against "
                f"{top['control_rate']:.2%} for the control {control}, {top['arm']} ahead by "
                f"{_points(top['difference'])} ({_interval(low, high)}), {_holm(top, count)}, "
                f"not below {alpha:.3g}"
            )
        elif top["difference"] == 0:
            tied = [c["arm"] for c in comparisons if c["rate"] == top["rate"]]
            detail = (
                f"no group leads on {metric}: {_names([f'the control {control}', *tied])} "
                f"are tied at {top['rate']:.2%}"
            )
        else:
            others = ", the best variant" if count > 1 else ""
            detail = (
                f"the control {control} leads on {metric}: {top['control_rate']:.2%} against "
                f"{top['rate']:.2%} for {top['arm']}{others}, {control} ahead by "
                f"{_points(top['difference'])} ({_interval(-high, -low)}), {_holm(top, count)}"
            )
            p = top["p_value_holm"]
            if p is not None and p < alpha:
                verdict = f"No variant beats the control at {confidence:.3g} confidence"
    reason = f"{verdict} ({detail}): sending the default variant {default_name}."
    return Choice(outcome=ABDecision.Outcome.DEFAULT, variant_name=default_name, reason=reason)


def _default_variant(campaign: Campaign) -> Variant:
    if campaign.default_variant_id is not None:
        return Variant.objects.get(pk=campaign.default_variant_id)
    first = Variant.objects.filter(campaign_id=campaign.pk).order_by("pk").first()
    if first is None:
        raise DecisionError(f"Campaign {campaign.slug!r} has no variant.")
    return first


def campaign_decide(
    *, campaign: Campaign, now: dt.datetime | None = None, enqueue: bool = True
) -> ABDecision:
    """Decide the test once its horizon is reached and send the rest of the audience.
    Raises DecisionError before the horizon. A decision already taken is returned as it is
    (its remainder is sent if that had not happened yet)."""
    now = now or timezone.now()
    existing = ABDecision.objects.filter(campaign_id=campaign.pk).first()
    if existing is None:
        report = campaign_report(campaign=campaign, now=now)
        if not report["horizon"]["reached"]:
            raise DecisionError(f"Campaign {campaign.slug!r}: {report['horizon']['explanation']}")
        default = _default_variant(campaign)
        choice = choose(report=report, default_name=default.name)
        variant = (
            default
            if choice.outcome == ABDecision.Outcome.DEFAULT
            else Variant.objects.get(campaign_id=campaign.pk, name=choice.variant_name)
        )
        try:
            with transaction.atomic():
                existing = ABDecision.objects.create(
                    campaign=campaign,
                    decided_at=now,
                    variant=variant,
                    outcome=choice.outcome,
                    reason=choice.reason,
                    numbers=dict(report),
                )
        except IntegrityError:
            # Another beat run decided first: its decision stands.
            existing = ABDecision.objects.get(campaign_id=campaign.pk)
        logger.info("A/B decision for %s: %s", campaign.slug, existing.reason)
    remainder_send(decision=existing, now=now, enqueue=enqueue)
    return existing


def remainder_send(
    *, decision: ABDecision, now: dt.datetime | None = None, enqueue: bool = True
) -> int:
    """Launch the winner to the rest of the audience once; returns the deliveries created."""
    from campaigns.services.launch import campaign_send_winner

    campaign = Campaign.objects.get(pk=decision.campaign_id)
    if (
        decision.remainder_sent_at is not None
        or decision.variant_id is None
        or campaign.test_share >= 100
        or campaign.kind != Campaign.Kind.BROADCAST
        or campaign.status in (Campaign.Status.CANCELLED, Campaign.Status.PAUSED)
    ):
        return 0
    variant = Variant.objects.get(pk=decision.variant_id)
    result = campaign_send_winner(campaign=campaign, variant=variant, now=now, enqueue=enqueue)
    ABDecision.objects.filter(pk=decision.pk).update(
        remainder_sent_at=now or timezone.now(), remainder_deliveries=result.created
    )
    decision.refresh_from_db()
    return result.created


def campaigns_decide_due(*, now: dt.datetime | None = None) -> list[ABDecision]:
    """The periodic sweep: every started campaign with a declared horizon and no decision
    yet is decided when its horizon is reached; decisions whose remainder was not launched
    (paused campaign, a crash mid-launch) are launched."""
    now = now or timezone.now()
    decided: list[ABDecision] = []
    candidates = (
        Campaign.objects.filter(
            Q(test_horizon_at__isnull=False) | Q(test_sample_per_variant__isnull=False),
            ab_decision__isnull=True,
            started_at__isnull=False,
        )
        .exclude(status__in=[Campaign.Status.DRAFT, Campaign.Status.CANCELLED])
        .filter(Q(test_horizon_at__isnull=True) | Q(test_horizon_at__lte=now))
        .order_by("pk")
    )
    for campaign in candidates:
        try:
            decided.append(campaign_decide(campaign=campaign, now=now))
        except DecisionError as exc:
            logger.debug("%s", exc)
    unsent = ABDecision.objects.filter(
        remainder_sent_at__isnull=True,
        campaign__test_share__lt=100,
        campaign__kind=Campaign.Kind.BROADCAST,
    ).exclude(campaign__status__in=[Campaign.Status.CANCELLED, Campaign.Status.PAUSED])
    for decision in unsent:
        remainder_send(decision=decision, now=now)
    return decided
