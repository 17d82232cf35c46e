"""A campaign's progress as admin shows it: deliveries by status, and those held back by
reason, from one GROUP BY."""

from __future__ import annotations

from django.db.models import Count
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from campaigns.models import Campaign, Delivery

ProgressRow = tuple[str, str, int]


def campaign_progress(campaign: Campaign) -> list[ProgressRow]:
    """(status, reason, count) for one campaign: one GROUP BY over its deliveries."""
    rows = (
        Delivery.objects.filter(campaign=campaign)
        .order_by()
        .values_list("status", "reason")
        .annotate(n=Count("id"))
    )
    return [(status, reason, n) for status, reason, n in rows]


def progress_html(campaign: Campaign) -> SafeString:
    rows = campaign_progress(campaign)
    statuses: dict[str, str] = {value: str(label) for value, label in Delivery.Status.choices}
    reasons: dict[str, str] = {value: str(label) for value, label in Delivery.Reason.choices}
    totals: dict[str, int] = {}
    held: list[tuple[str, str, int]] = []
    for status, reason, n in rows:
        totals[status] = totals.get(status, 0) + n
        if reason and status in {Delivery.Status.SKIPPED, Delivery.Status.DEFERRED}:
            held.append((statuses.get(status, status), reasons.get(reason, reason), n))
    total = sum(totals.values())
    held.sort(key=lambda row: (-row[2], row[0], row[1]))
    by_status = format_html_join(
        "",
        '<tr><th scope="row">{}</th><td class="progress-{}">{}</td></tr>',
        ((statuses[s], s, totals.get(s, 0)) for s in statuses if totals.get(s)),
    )
    by_reason = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
        held,
    )
    held_table = (
        format_html(
            '<table class="campaign-held"><caption>{}</caption><thead><tr><th>{}</th><th>{}</th>'
            "<th>{}</th></tr></thead><tbody>{}</tbody></table>",
            _("Held back, by reason"),
            _("status"),
            _("reason"),
            _("deliveries"),
            by_reason,
        )
        if held
        else ""
    )
    return format_html(
        '<div class="campaign-progress" data-status="{}"><p>{}: <strong>{}</strong> · {}</p>'
        '<table class="campaign-status"><tbody>{}</tbody></table>{}</div>',
        campaign.status,
        _("Deliveries"),
        total,
        campaign.get_status_display(),
        by_status,
        held_table,
    )
