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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Count, Max, Q

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
_ZONES: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    if name not in _ZONES:
        try:
            _ZONES[name] = ZoneInfo(name) if name else ZoneInfo("UTC")
        except (ZoneInfoNotFoundError, ValueError):
            _ZONES[name] = ZoneInfo("UTC")
    return _ZONES[name]


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
    rows = list(
        Contact.objects.filter(id__in=contact_ids, is_erased=False).values(
            "id",
            "timezone",
            "attributes",
            "last_activity_at",
            "last_purchase_at",
            *CONTACT_FIELDS,
            "lifecycle__stage",
            "rfm__group",
            "prediction__expected_purchases",
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
    attribute_needs = [need for need in needs if isinstance(need, AttributeNeed)]

    snapshots: list[Facts] = []
    for row in rows:
        cid = row["id"]
        last_activity, last_purchase = (
            history.get(cid, (None, None))
            if historical
            else (row["last_activity_at"], row["last_purchase_at"])
        )
        local = now.astimezone(_zone(row["timezone"] or ""))
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
        for event_need in event_needs:
            facts[event_need.key] = int(counts.get(cid, {}).get(event_need.key, 0))
        for segment_need in segment_needs:
            stays = memberships.get((cid, segment_need.slug), [])
            facts[segment_need.member_key] = any(
                exited is None or exited > now for _, exited in stays
            )
            facts[segment_need.entered_key] = _hours(
                now, max((entered for entered, _ in stays), default=None)
            )
            exits = [exited for _, exited in stays if exited is not None and exited <= now]
            facts[segment_need.exited_key] = _hours(now, max(exits, default=None))
        for consent_need in consent_needs:
            status = consent.get(cid, {}).get((consent_need.channel, consent_need.purpose))
            facts[consent_need.key] = status == ConsentRecord.Status.GRANTED
        for attribute_need in attribute_needs:
            name = attribute_need.name
            raw = row[name] if name in CONTACT_FIELDS else (row["attributes"] or {}).get(name)
            if name in CONTACT_FIELDS and raw == "":
                raw = None
            text, number = _text(raw), _number(raw)
            if text is not None:
                facts[attribute_need.key] = text
            if number is not None:
                facts[attribute_need.number_key] = number
        snapshots.append(facts)
    return snapshots
