"""A/B results in admin: the campaign's results page (per-group table, comparisons, SVG
charts, sample-ratio warning, horizon state, decision), its CSV export, the sample-size
planner, the A/B fields of the campaign form and read-only decisions.

campaigns/admin/campaigns.py takes `AB_FIELDS`, `AB_FIELDSET` and `results_urls` from here.
Everything shown goes through the template engine's escaping or format_html."""

from __future__ import annotations

import csv
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext_lazy as _

from campaigns.abtest import planner
from campaigns.abtest.charts import cumulative_chart, rates_chart
from campaigns.abtest.report import Report, campaign_report
from campaigns.models import ABDecision, Campaign
from campaigns.tracking.selectors import campaign_tracking_counts
from core.admin import ReadOnlyModelAdmin

AB_FIELDS = (
    "test_share",
    "test_horizon_at",
    "test_sample_per_variant",
    "test_baseline_rate",
    "test_minimum_effect",
    "winner_metric",
    "winner_confidence",
    "default_variant",
    "attribution",
)
AB_FIELDSET: Any = (
    _("A/B test (fixed horizon: declare it before launching)"),
    {"fields": AB_FIELDS, "classes": ("collapse",)},
)
CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class PlannerForm(forms.Form):
    baseline = forms.FloatField(
        label=_("baseline rate %"),
        min_value=0.001,
        max_value=99.999,
        initial=5,
        help_text=_("The control's rate today, e.g. 5 for 5 %."),
    )
    mde = forms.FloatField(
        label=_("minimum detectable effect"),
        initial=1,
        help_text=_("e.g. 1 (points) or 10 (% relative)."),
    )
    mde_kind = forms.ChoiceField(
        label=_("effect is"),
        choices=(("absolute", _("absolute, in points")), ("relative", _("relative, in %"))),
        initial="absolute",
    )
    power = forms.FloatField(label=_("power %"), min_value=50, max_value=99.9, initial=80)
    alpha = forms.FloatField(
        label=_("significance (alpha) %"),
        min_value=0.1,
        max_value=20,
        initial=5,
        help_text=_("Two-sided; divide by the number of variants for several (Bonferroni)."),
    )

    def plan(self) -> planner.Plan | None:
        data = self.cleaned_data
        try:
            return planner.sample_size(
                baseline=data["baseline"] / 100,
                mde=data["mde"] / 100,
                mde_kind=data["mde_kind"],
                power=data["power"] / 100,
                alpha=data["alpha"] / 100,
            )
        except planner.PlannerError as exc:
            self.add_error(None, str(exc))
            return None


def _pct(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f} %"


def _points(value: float) -> str:
    return f"{value * 100:+.2f}"


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def display_arms(report: Report) -> list[dict[str, Any]]:
    """The per-group table as display strings (percentages, intervals)."""
    rows = []
    for arm in report["arms"]:
        best = arm["probability_best"]
        rows.append(
            {
                **arm,
                "open_rate": _pct(arm["open_rate"]),
                "click_rate": _pct(arm["click_rate"]),
                "conversion_rate": _pct(arm["conversion_rate"]),
                "metric": (
                    "—"
                    if arm["metric_rate"] is None
                    else f"{_pct(arm['metric_rate'])} ({_pct(arm['metric_ci'][0])} to "
                    f"{_pct(arm['metric_ci'][1])})"
                ),
                "probability_best": "—" if best is None else f"{best:.3f}",
            }
        )
    return rows


def display_comparisons(report: Report) -> list[dict[str, Any]]:
    rows = []
    for c in report["comparisons"]:
        low, high = c["difference_ci"]
        lift_ci = c["relative_lift_ci"]
        lift = "—" if c["relative_lift"] is None else f"{c['relative_lift'] * 100:+.1f} %"
        if lift_ci:
            lift += f" ({lift_ci[0] * 100:+.1f} % to {lift_ci[1] * 100:+.1f} %)"
        rows.append(
            {
                "arm": c["arm"],
                "difference": f"{_points(c['difference'])} ({_points(low)} to {_points(high)})",
                "relative_lift": lift,
                "p_value": _p(c["p_value"]),
                "p_value_holm": _p(c["p_value_holm"]),
                "significant": c["significant"],
            }
        )
    return rows


def _campaign_for(
    model_admin: admin.ModelAdmin[Campaign], request: HttpRequest, pk: int
) -> Campaign:
    campaign = get_object_or_404(Campaign, pk=pk)
    if not model_admin.has_view_permission(request, campaign):
        raise PermissionDenied
    return campaign


def results_view(
    model_admin: admin.ModelAdmin[Campaign], request: HttpRequest, object_id: int
) -> HttpResponse:
    campaign = _campaign_for(model_admin, request, object_id)
    report = campaign_report(campaign=campaign)
    planner_form = PlannerForm(request.GET if "baseline" in request.GET else None)
    plan = planner_form.plan() if planner_form.is_bound and planner_form.is_valid() else None
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "title": _("A/B results"),
        "subtitle": campaign.name,
        "opts": Campaign._meta,
        "original": campaign,
        "campaign": campaign,
        "report": report,
        "arms": display_arms(report),
        "comparisons": display_comparisons(report),
        "rates_chart": rates_chart(report),
        "cumulative_chart": cumulative_chart(report),
        "csv_url": reverse("admin:campaigns_campaign_results_csv", args=[campaign.pk]),
        "change_url": reverse("admin:campaigns_campaign_change", args=[campaign.pk]),
        "planner_form": planner_form,
        "plan": plan,
        "tracking": campaign_tracking_counts(campaign_id=campaign.pk),
    }
    return TemplateResponse(request, "campaigns/admin/results.html", context)


def _csv_cell(value: Any) -> Any:
    # A cell starting with = + - @ is a formula in spreadsheets: variant names are typed by
    # people, so text cells are defused (numbers are written as numbers).
    if isinstance(value, str) and value.startswith(CSV_FORMULA_START):
        return "'" + value
    return "" if value is None else value


CSV_COLUMNS = (
    "group",
    "assigned",
    "sent",
    "delivered",
    "opened",
    "unique_clicks",
    "conversions",
    "revenue",
    "unsubscribes",
    "bounces",
    "complaints",
    "metric",
    "rate",
    "rate_ci_low",
    "rate_ci_high",
    "probability_best",
    "control",
    "difference",
    "difference_ci_low",
    "difference_ci_high",
    "relative_lift",
    "relative_lift_ci_low",
    "relative_lift_ci_high",
    "p_value",
    "p_value_holm",
    "significant",
)


def report_rows(report: Report) -> list[list[Any]]:
    comparisons = {c["arm"]: c for c in report["comparisons"]}
    rows: list[list[Any]] = []
    for arm in report["arms"]:
        c = comparisons.get(arm["name"])
        lift_ci = c["relative_lift_ci"] if c else None
        rows.append(
            [
                arm["name"],
                arm["assigned"],
                arm["sent"],
                arm["delivered"],
                arm["opened"],
                arm["clicked"],
                arm["conversions"],
                arm["revenue"],
                arm["unsubscribed"],
                arm["bounced"],
                arm["complained"],
                report["metric"],
                arm["metric_rate"],
                arm["metric_ci"][0],
                arm["metric_ci"][1],
                arm["probability_best"],
                c["control"] if c else "",
                c["difference"] if c else None,
                c["difference_ci"][0] if c else None,
                c["difference_ci"][1] if c else None,
                c["relative_lift"] if c else None,
                lift_ci[0] if lift_ci else None,
                lift_ci[1] if lift_ci else None,
                c["p_value"] if c else None,
                c["p_value_holm"] if c else None,
                ("yes" if c["significant"] else "no") if c else "",
            ]
        )
    return rows


def results_csv_view(
    model_admin: admin.ModelAdmin[Campaign], request: HttpRequest, object_id: int
) -> HttpResponse:
    campaign = _campaign_for(model_admin, request, object_id)
    report = campaign_report(campaign=campaign)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="ab-{campaign.slug}.csv"'
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    for row in report_rows(report):
        writer.writerow([_csv_cell(value) for value in row])
    return response


def results_urls(model_admin: admin.ModelAdmin[Campaign]) -> list[URLPattern]:
    site = model_admin.admin_site
    return [
        path(
            "<int:object_id>/results/",
            site.admin_view(
                lambda request, object_id: results_view(model_admin, request, object_id)
            ),
            name="campaigns_campaign_results",
        ),
        path(
            "<int:object_id>/results/csv/",
            site.admin_view(
                lambda request, object_id: results_csv_view(model_admin, request, object_id)
            ),
            name="campaigns_campaign_results_csv",
        ),
    ]


@admin.register(ABDecision)
class ABDecisionAdmin(ReadOnlyModelAdmin[ABDecision]):
    """Decisions are taken by the sweep at the horizon, never by hand: read-only."""

    list_display = ("campaign", "outcome", "variant", "decided_at", "remainder_sent_at")
    list_filter = ("outcome",)
    list_select_related = ("campaign", "variant")
    exclude = ("numbers",)
    readonly_fields = (
        "campaign",
        "decided_at",
        "variant",
        "outcome",
        "reason",
        "remainder_sent_at",
        "remainder_deliveries",
    )
