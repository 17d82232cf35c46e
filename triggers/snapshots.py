"""Fact snapshots for a batch of contacts, in a constant number of queries per batch:

1. the contacts with their lifecycle stage, RFM group and prediction (one joined query);
2. windowed event counts, one conditional aggregate per needed (event, window, filters);
3. segment memberships of the needed segments;
4. current consent (crm.selectors.consent_current);
and, for a backtest at a past moment only, 5. the latest activity and purchase before it.

`now` may be in the past (dry-run backtests): windows then end at `now`, and membership is
read from its history. Lifecycle, RFM, predictions, consent and attributes are current
values either way (they have no history to read).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import Count, Max, Q

from core.zones import zone_or_utc
from crm.models import ConsentRecord, Contact, Event
from crm.selectors import consent_current
from segments.models import SegmentMembership
from triggers.facts import (
    CONTACT_FIELDS,
    AttributeNeed,
    ConsentNeed,
    EventCountNeed,
    Need,
    SegmentNeed,
)
from triggers.types import Facts

NEVER_HOURS = 10**9  # "hours since" for something that never happened


def _days(now: dt.datetime, then: dt.datetime | None) -> float | None:
    if then is None:
        return None
    return round((now - then).total_seconds() / 86400, 4)


def _hours(now: dt.datetime, then: dt.datetime | None) -> float:
    if then is None:
        return NEVER_HOURS
    return round((now - then).total_seconds() / 3600, 4)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _event_filter(need: EventCountNeed, now: dt.datetime) -> Q:
    condition = Q(type=need.event, occurred_at__gte=now - dt.timedelta(hours=need.hours))
    for item in need.where:
        lookup = f"properties__{item.property}"
        if item.operator == "equals":
            condition &= Q(**{lookup: item.value})
        elif item.operator == "not_equals":
            condition &= ~Q(**{lookup: item.value})
        else:
            condition &= Q(**{f"{lookup}__icontains": item.value})
    return condition


def snapshots_build(
    *,
    contact_ids: Sequence[int],
    needs: Iterable[Need],
    now: dt.datetime,
    historical: bool = False,
) -> list[Facts]:
    """One snapshot per existing, non-erased contact of `contact_ids`."""
    needs = set(needs)
    attribute_needs = [need for need in needs if isinstance(need, AttributeNeed)]
    # Attributes (a JSON column to decode per row) and the profile fields are read only when
    # a condition compares one: most rulesets never do.
    profile = ("attributes", *CONTACT_FIELDS) if attribute_needs else ("timezone",)
    rows = list(
        Contact.objects.filter(id__in=contact_ids, is_erased=False).values(
            "id",
            "last_activity_at",
            "last_purchase_at",
            "lifecycle__stage",
            "rfm__group",
            "prediction__expected_purchases",
            *profile,
        )
    )
    if not rows:
        return []
    ids = [row["id"] for row in rows]
    now_ts = int(now.timestamp())

    history: dict[int, tuple[dt.datetime | None, dt.datetime | None]] = {}
    if historical:
        for latest in (
            Event.objects.filter(contact_id__in=ids, occurred_at__lte=now)
            .values("contact_id")
            .annotate(
                last=Max("occurred_at"),
                last_purchase=Max("occurred_at", filter=Q(type=Event.ORDER_COMPLETED)),
            )
        ):
            history[latest["contact_id"]] = (latest["last"], latest["last_purchase"])

    counts: dict[int, dict[str, Any]] = {}
    event_needs = [need for need in needs if isinstance(need, EventCountNeed)]
    if event_needs:
        widest = max(need.hours for need in event_needs)
        aggregates = {
            need.key: Count("id", filter=_event_filter(need, now)) for need in event_needs
        }
        for row_counts in (
            Event.objects.filter(
                contact_id__in=ids,
                type__in={need.event for need in event_needs},
                occurred_at__gte=now - dt.timedelta(hours=widest),
                occurred_at__lte=now,
            )
            .values("contact_id")
            .annotate(**aggregates)
        ):
            counts[row_counts["contact_id"]] = dict(row_counts)

    memberships: dict[tuple[int, str], list[tuple[dt.datetime, dt.datetime | None]]] = {}
    segment_needs = [need for need in needs if isinstance(need, SegmentNeed)]
    if segment_needs:
        for contact_id, slug, entered, exited in SegmentMembership.objects.filter(
            contact_id__in=ids,
            segment__slug__in={need.slug for need in segment_needs},
            entered_at__lte=now,
        ).values_list("contact_id", "segment__slug", "entered_at", "exited_at"):
            memberships.setdefault((contact_id, slug), []).append((entered, exited))

    consent_needs = [need for need in needs if isinstance(need, ConsentNeed)]
    consent = consent_current(ids) if consent_needs else {}
    # Each key is a digest: name them once per batch, not once per contact.
    event_keys = [need.key for need in event_needs]
    segment_keys = [
        (need.slug, need.member_key, need.entered_key, need.exited_key) for need in segment_needs
    ]
    consent_keys = [(need.channel, need.purpose, need.key) for need in consent_needs]
    attribute_keys = [(need.name, need.key, need.number_key) for need in attribute_needs]
    no_counts: dict[str, Any] = {}

    snapshots: list[Facts] = []
    for row in rows:
        cid = row["id"]
        last_activity, last_purchase = (
            history.get(cid, (None, None))
            if historical
            else (row["last_activity_at"], row["last_purchase_at"])
        )
        local = now.astimezone(zone_or_utc(row["timezone"] or ""))
        facts: Facts = {
            "cid": cid,
            "now_ts": now_ts,
            "local_minutes": local.hour * 60 + local.minute,
            "local_weekday": local.weekday(),
        }
        optional = {
            "inactive_days": _days(now, last_activity),
            "purchase_days": _days(now, last_purchase),
            "lifecycle": row["lifecycle__stage"],
            "rfm_group": row["rfm__group"],
            "p_purchase": (
                round(1 - math.exp(-row["prediction__expected_purchases"]), 6)
                if row["prediction__expected_purchases"] is not None
                else None
            ),
            # Not matched on: what every_time's occurrence key is made of.
            "activity_ts": int(last_activity.timestamp()) if last_activity else None,
        }
        facts.update({key: value for key, value in optional.items() if value is not None})
        contact_counts = counts.get(cid, no_counts)
        for event_key in event_keys:
            facts[event_key] = int(contact_counts.get(event_key, 0))
        for slug, member_key, entered_key, exited_key in segment_keys:
            stays = memberships.get((cid, slug), [])
            facts[member_key] = any(exited is None or exited > now for _, exited in stays)
            facts[entered_key] = _hours(now, max((entered for entered, _ in stays), default=None))
            exits = [exited for _, exited in stays if exited is not None and exited <= now]
            facts[exited_key] = _hours(now, max(exits, default=None))
        for channel, purpose, consent_key in consent_keys:
            status = consent.get(cid, {}).get((channel, purpose))
            facts[consent_key] = status == ConsentRecord.Status.GRANTED
        for name, text_key, number_key in attribute_keys:
            raw = row[name] if name in CONTACT_FIELDS else (row["attributes"] or {}).get(name)
            if name in CONTACT_FIELDS and raw == "":
                raw = None
            text, number = _text(raw), _number(raw)
            if text is not None:
                facts[text_key] = text
            if number is not None:
                facts[number_key] = number
        snapshots.append(facts)
    return snapshots
