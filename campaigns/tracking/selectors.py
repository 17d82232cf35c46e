"""What admin shows of a campaign's own tracking: people and machines side by side."""

from __future__ import annotations

from typing import TypedDict

from django.db.models import Count

from campaigns.models import Response, TrackingHit


class TrackingCounts(TypedDict):
    human_clicks: int  # unique (delivery, link) clicked by a person
    scanner_clicks: int  # unique (delivery, link) only scanners hit
    human_opens: int  # deliveries a person opened
    machine_opens: int  # deliveries only a proxy or scanner opened
    not_counted: int  # ESP opens and clicks kept but not counted (own tracking on)
    hits: dict[str, int]  # raw hits by label ("" = not labelled yet)


def campaign_tracking_counts(*, campaign_id: int) -> TrackingCounts:
    """Two GROUP BY queries, whatever the campaign's size."""
    R, L = Response.Kind, Response.Label
    by_kind_label = {
        (row["kind"], row["label"]): row["n"]
        for row in Response.objects.filter(campaign_id=campaign_id, kind__in=[R.OPENED, R.CLICKED])
        .order_by()
        .values("kind", "label")
        .annotate(n=Count("id"))
    }
    hits = {
        row["label"]: row["n"]
        for row in TrackingHit.objects.filter(delivery__campaign_id=campaign_id)
        .order_by()
        .values("label")
        .annotate(n=Count("id"))
    }
    return {
        "human_clicks": by_kind_label.get((R.CLICKED, L.HUMAN), 0),
        "scanner_clicks": by_kind_label.get((R.CLICKED, L.SCANNER), 0),
        "human_opens": by_kind_label.get((R.OPENED, L.HUMAN), 0),
        "machine_opens": by_kind_label.get((R.OPENED, L.MACHINE_OPEN), 0)
        + by_kind_label.get((R.OPENED, L.SCANNER), 0),
        "not_counted": sum(n for (_, label), n in by_kind_label.items() if label == L.NOT_COUNTED),
        "hits": hits,
    }
