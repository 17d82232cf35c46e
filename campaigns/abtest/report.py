"""The A/B report of one campaign: the SQL metrics per arm, the statistics against the control,
the sample-ratio check, the horizon and the decision. One JSON-ready dict, shown by the admin
results page, exported as CSV and printed by `campaigns report SLUG --json`."""

from __future__ import annotations

import datetime as dt
from typing import TypedDict

from django.utils import timezone

from campaigns.abtest import stats
from campaigns.abtest.metrics import ArmMetrics, CampaignMetrics, campaign_metrics
from campaigns.models import ABDecision, Campaign

DISPLAY_CONFIDENCE = 0.95


class ArmReport(TypedDict):
    name: str
    variant_id: int | None
    is_holdout: bool
    share: float
    assigned: int
    sent: int
    delivered: int
    opened: int
    clicked: int
    conversions: int
    revenue: str
    unsubscribed: int
    bounced: int
    complained: int
    open_rate: float | None  # of delivered; inflated by mail privacy proxies
    click_rate: float | None  # unique clicks of sent
    conversion_rate: float | None  # conversions of assigned (intention to treat)
    revenue_per_recipient: str | None
    metric_successes: int
    metric_trials: int
    metric_rate: float | None
    metric_ci: list[float]  # Wilson, 95 %
    probability_best: float | None


class ComparisonReport(TypedDict):
    arm: str
    control: str
    rate: float
    control_rate: float
    difference: float
    difference_ci: list[float]  # Newcombe hybrid score, 95 %
    relative_lift: float | None
    relative_lift_ci: list[float] | None  # log ratio, delta method, 95 %
    z: float | None
    p_value: float | None
    p_value_holm: float | None
    significant: bool  # positive difference and Holm p below 1 - winner_confidence


class SrmReport(TypedDict):
    chi2: float
    p_value: float
    warning: bool
    observed: dict[str, int]
    expected: dict[str, float]


class HorizonReport(TypedDict):
    at: str | None
    sample_per_variant: int | None
    declared: bool
    reached: bool
    state: str  # "none", "interim" or "final"
    explanation: str


class DecisionReport(TypedDict):
    decided_at: str
    outcome: str
    variant: str | None
    reason: str
    remainder_sent_at: str | None
    remainder_deliveries: int


class DayReport(TypedDict):
    date: str
    cumulative: dict[str, int]


class Report(TypedDict):
    campaign: str
    name: str
    generated_at: str
    goal_event: str
    attribution: str
    attribution_window_days: int
    metric: str
    winner_confidence: float
    test_share: int
    control: str | None
    arms: list[ArmReport]
    comparisons: list[ComparisonReport]
    srm: SrmReport | None
    horizon: HorizonReport
    daily: list[DayReport]
    decision: DecisionReport | None


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def metric_counts(arm: ArmMetrics, metric: str) -> tuple[int, int]:
    """(successes, trials) of the decision metric: conversions of everyone assigned
    (intention to treat, so the holdout compares fairly), or unique clicks of those sent."""
    if metric == Campaign.WinnerMetric.CLICK:
        return arm.clicked, arm.sent
    return arm.conversions, arm.assigned


def control_arm(arms: list[ArmMetrics], metric: str) -> ArmMetrics | None:
    """The holdout for conversions when the campaign has one; else the first variant (A).
    Clicks are always compared with A: the holdout gets no message to click."""
    if metric == Campaign.WinnerMetric.CONVERSION:
        for arm in arms:
            if arm.is_holdout and arm.share > 0:
                return arm
    variants = [arm for arm in arms if not arm.is_holdout]
    return variants[0] if variants else None


def compared_arms(arms: list[ArmMetrics], metric: str) -> list[ArmMetrics]:
    """The arms the metric means something for: no holdout in a click comparison."""
    if metric == Campaign.WinnerMetric.CLICK:
        return [arm for arm in arms if not arm.is_holdout]
    return list(arms)


def horizon_state(
    *, campaign: Campaign, metrics: CampaignMetrics, now: dt.datetime
) -> HorizonReport:
    """Fixed horizon: an end time, else a sample per group (plus the attribution window
    after the last test message and nothing still pending). The time wins when both are set."""
    at = campaign.test_horizon_at
    sample = campaign.test_sample_per_variant
    base: HorizonReport = {
        "at": at.isoformat() if at else None,
        "sample_per_variant": sample,
        "declared": bool(at or sample),
        "reached": False,
        "state": "none",
        "explanation": "No test horizon declared: descriptive figures only, no winner is chosen.",
    }
    if at is not None:
        reached = now >= at
        base["reached"] = reached
        base["state"] = "final" if reached else "interim"
        base["explanation"] = (
            f"Horizon {at:%Y-%m-%d %H:%M} UTC reached: final figures."
            if reached
            else f"Interim, do not act: the test is evaluated at {at:%Y-%m-%d %H:%M} UTC."
        )
        return base
    if sample:
        arms = compared_arms(metrics.arms, campaign.winner_metric)
        short = [a.name for a in arms if metric_counts(a, campaign.winner_metric)[1] < sample]
        pending = sum(a.pending for a in metrics.arms)
        references = [a.last_reference for a in metrics.arms if a.last_reference]
        window_ends = (
            max(references) + dt.timedelta(days=campaign.attribution_window_days)
            if references
            else None
        )
        if short:
            why = f"groups below {sample}: {', '.join(short)}"
        elif pending:
            why = f"{pending} test messages still pending"
        elif window_ends is None or now < window_ends:
            when = f"{window_ends:%Y-%m-%d %H:%M} UTC" if window_ends else "later"
            why = f"the attribution window after the last test message ends {when}"
        else:
            why = ""
        base["reached"] = not why
        base["state"] = "final" if not why else "interim"
        base["explanation"] = (
            f"Sample of {sample} per group reached and its attribution window over: final figures."
            if not why
            else f"Interim, do not act: {why}."
        )
    return base


def _decision(campaign: Campaign) -> DecisionReport | None:
    decision = ABDecision.objects.filter(campaign_id=campaign.pk).select_related("variant").first()
    if decision is None:
        return None
    return {
        "decided_at": decision.decided_at.isoformat(),
        "outcome": decision.outcome,
        "variant": decision.variant.name if decision.variant else None,
        "reason": decision.reason,
        "remainder_sent_at": (
            decision.remainder_sent_at.isoformat() if decision.remainder_sent_at else None
        ),
        "remainder_deliveries": decision.remainder_deliveries,
    }


def campaign_report(*, campaign: Campaign, now: dt.datetime | None = None) -> Report:
    now = now or timezone.now()
    metrics = campaign_metrics(campaign=campaign)
    metric = campaign.winner_metric
    confidence = float(campaign.winner_confidence)
    compared = compared_arms(metrics.arms, metric)
    control = control_arm(metrics.arms, metric)

    counts = [metric_counts(arm, metric) for arm in compared]
    best = stats.probability_best([x for x, _ in counts], [n for _, n in counts])
    best_by_name = dict(zip([a.name for a in compared], best, strict=True))

    arms: list[ArmReport] = []
    for arm in metrics.arms:
        x, n = metric_counts(arm, metric)
        lower, upper = stats.wilson_interval(x, n, DISPLAY_CONFIDENCE)
        arms.append(
            {
                "name": arm.name,
                "variant_id": arm.variant_id,
                "is_holdout": arm.is_holdout,
                "share": arm.share,
                "assigned": arm.assigned,
                "sent": arm.sent,
                "delivered": arm.delivered,
                "opened": arm.opened,
                "clicked": arm.clicked,
                "conversions": arm.conversions,
                "revenue": str(arm.revenue),
                "unsubscribed": arm.unsubscribed,
                "bounced": arm.bounced,
                "complained": arm.complained,
                "open_rate": _ratio(arm.opened, arm.delivered),
                "click_rate": _ratio(arm.clicked, arm.sent),
                "conversion_rate": _ratio(arm.conversions, arm.assigned),
                "revenue_per_recipient": (
                    str((arm.revenue / arm.assigned).quantize(arm.revenue.__class__("0.0001")))
                    if arm.assigned
                    else None
                ),
                "metric_successes": x,
                "metric_trials": n,
                "metric_rate": _ratio(x, n),
                "metric_ci": [lower, upper],
                "probability_best": best_by_name.get(arm.name),
            }
        )

    comparisons: list[ComparisonReport] = []
    if control is not None:
        cx, cn = metric_counts(control, metric)
        for arm in compared:
            if arm is control:
                continue
            x, n = metric_counts(arm, metric)
            result = stats.compare(x, n, cx, cn, DISPLAY_CONFIDENCE)
            if result is None:
                continue
            comparisons.append(
                {
                    "arm": arm.name,
                    "control": control.name,
                    "rate": result.rate,
                    "control_rate": result.control_rate,
                    "difference": result.difference,
                    "difference_ci": list(result.difference_ci),
                    "relative_lift": result.relative_lift,
                    "relative_lift_ci": (
                        list(result.relative_lift_ci) if result.relative_lift_ci else None
                    ),
                    "z": result.z,
                    "p_value": result.p_value,
                    "p_value_holm": None,
                    "significant": False,
                }
            )
        adjusted = stats.holm_adjust([c["p_value"] for c in comparisons])
        for comparison, p_holm in zip(comparisons, adjusted, strict=True):
            comparison["p_value_holm"] = p_holm
            comparison["significant"] = (
                p_holm is not None and p_holm < 1 - confidence and comparison["difference"] > 0
            )

    # Sample ratio: every arm the launch assigns to, against its configured share.
    srm_arms = [arm for arm in metrics.arms if arm.share > 0]
    srm_result = stats.sample_ratio_mismatch(
        [a.assigned for a in srm_arms], [a.share for a in srm_arms]
    )
    srm: SrmReport | None = None
    if srm_result is not None:
        srm = {
            "chi2": srm_result.chi2,
            "p_value": srm_result.p_value,
            "warning": srm_result.warning,
            "observed": {a.name: a.assigned for a in srm_arms},
            "expected": dict(zip([a.name for a in srm_arms], srm_result.expected, strict=True)),
        }

    return {
        "campaign": campaign.slug,
        "name": campaign.name,
        "generated_at": now.isoformat(),
        "goal_event": campaign.goal_event,
        "attribution": campaign.attribution,
        "attribution_window_days": campaign.attribution_window_days,
        "metric": metric,
        "winner_confidence": confidence,
        "test_share": campaign.test_share,
        "control": control.name if control else None,
        "arms": arms,
        "comparisons": comparisons,
        "srm": srm,
        "horizon": horizon_state(campaign=campaign, metrics=metrics, now=now),
        "daily": [{"date": day.isoformat(), "cumulative": counts} for day, counts in metrics.daily],
        "decision": _decision(campaign),
    }


def _fmt_rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def _fmt_p(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def report_lines(report: Report) -> list[str]:
    """The report as text for the terminal (the same figures as the JSON)."""
    lines = [
        f"{report['name']} ({report['campaign']}): {report['metric']} on "
        f"{report['goal_event']} within {report['attribution_window_days']} days, "
        f"{report['attribution']}, control {report['control'] or '—'}",
        f"Horizon: {report['horizon']['explanation']}",
    ]
    srm = report["srm"]
    if srm is not None and srm["warning"]:
        lines.append(
            f"WARNING sample ratio mismatch: p = {srm['p_value']:.3g} (chi2 {srm['chi2']:.1f}); "
            "assignment or logging is broken, do not trust these results."
        )
    lines.append(
        f"{'group':<12}{'assigned':>9}{'sent':>8}{'deliv.':>8}{'opened*':>8}{'clicks':>8}"
        f"{'conv.':>7}{'revenue':>11}{'unsub':>6}{'bounce':>7}{'compl.':>7}{'rate':>8}"
        f"{'P(best)':>8}"
    )
    for arm in report["arms"]:
        best = arm["probability_best"]
        lines.append(
            f"{arm['name'][:12]:<12}{arm['assigned']:>9}{arm['sent']:>8}{arm['delivered']:>8}"
            f"{arm['opened']:>8}{arm['clicked']:>8}{arm['conversions']:>7}{arm['revenue']:>11}"
            f"{arm['unsubscribed']:>6}{arm['bounced']:>7}{arm['complained']:>7}"
            f"{_fmt_rate(arm['metric_rate']):>8}{'—' if best is None else f'{best:.3f}':>8}"
        )
    lines.append("* opens are inflated by mail privacy proxies (Apple Mail opens every message).")
    for c in report["comparisons"]:
        lift = c["relative_lift"]
        lift_ci = c["relative_lift_ci"]
        lines.append(
            f"{c['arm']} vs {c['control']}: {c['difference'] * 100:+.2f} points "
            f"[{c['difference_ci'][0] * 100:+.2f}, {c['difference_ci'][1] * 100:+.2f}], "
            f"lift {_fmt_rate(lift)}"
            + (f" [{lift_ci[0]:+.1%}, {lift_ci[1]:+.1%}]" if lift_ci else "")
            + f", p = {_fmt_p(c['p_value'])}, Holm p = {_fmt_p(c['p_value_holm'])}"
            + (" (significant)" if c["significant"] else "")
        )
    decision = report["decision"]
    if decision is not None:
        lines.append(
            f"Decision {decision['decided_at']}: {decision['variant']} ({decision['outcome']}). "
            f"{decision['reason']}"
        )
    return lines
