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

from core.conditions import elapsed, property_filters_q
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


def _hours(now: dt.datetime, then: dt.datetime | None) -> float:
    hours = elapsed(now, then, "hour")
    return NEVER_HOURS if hours is None else hours


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
    """An event without the property fails every test on it, "does not equal" included,
    as a missing fact fails every comparison in the rules engine."""
    window = Q(type=need.event, occurred_at__gte=need.window.start(now))
    return window & property_filters_q("properties", need.where, absent_not_equal=False)


Stays = list[tuple[dt.datetime, dt.datetime | None]]


def _history(
    ids: list[int], now: dt.datetime
) -> dict[int, tuple[dt.datetime | None, dt.datetime | None]]:
    """The latest activity and purchase of each contact up to `now`, from the events."""
    history: dict[int, tuple[dt.datetime | None, dt.datetime | None]] = {}
    for latest in (
        Event.objects.filter(contact_id__in=ids, occurred_at__lte=now)
        .values("contact_id")
        .annotate(
            last=Max("occurred_at"),
            last_purchase=Max("occurred_at", filter=Q(type=Event.ORDER_COMPLETED)),
        )
    ):
        history[latest["contact_id"]] = (latest["last"], latest["last_purchase"])
    return history


def _event_counts(
    ids: list[int], event_needs: list[EventCountNeed], now: dt.datetime
) -> dict[int, dict[str, Any]]:
    """One grouped scan of the widest window, counting every need at once."""
    if not event_needs:
        return {}
    widest = max(need.window.delta for need in event_needs)
    aggregates = {need.key: Count("id", filter=_event_filter(need, now)) for need in event_needs}
    return {
        row_counts["contact_id"]: dict(row_counts)
        for row_counts in Event.objects.filter(
            contact_id__in=ids,
            type__in={need.event for need in event_needs},
            occurred_at__gte=now - widest,
            occurred_at__lte=now,
        )
        .values("contact_id")
        .annotate(**aggregates)
    }


def _memberships(
    ids: list[int], segment_needs: list[SegmentNeed], now: dt.datetime
) -> dict[tuple[int, str], Stays]:
    memberships: dict[tuple[int, str], Stays] = {}
    if segment_needs:
        for contact_id, slug, entered, exited in SegmentMembership.objects.filter(
            contact_id__in=ids,
            segment__slug__in={need.slug for need in segment_needs},
            entered_at__lte=now,
        ).values_list("contact_id", "segment__slug", "entered_at", "exited_at"):
            memberships.setdefault((contact_id, slug), []).append((entered, exited))
    return memberships


def _membership_facts(
    facts: Facts, stays: Stays, now: dt.datetime, keys: tuple[str, str, str]
) -> None:
    member_key, entered_key, exited_key = keys
    facts[member_key] = any(exited is None or exited > now for _, exited in stays)
    facts[entered_key] = _hours(now, max((entered for entered, _ in stays), default=None))
    exits = [exited for _, exited in stays if exited is not None and exited <= now]
    facts[exited_key] = _hours(now, max(exits, default=None))


def _attribute_facts(
    facts: Facts, row: dict[str, Any], attribute_keys: list[tuple[str, str, str]]
) -> None:
    for name, text_key, number_key in attribute_keys:
        raw = row[name] if name in CONTACT_FIELDS else (row["attributes"] or {}).get(name)
        if name in CONTACT_FIELDS and raw == "":
            raw = None
        text, number = _text(raw), _number(raw)
        if text is not None:
            facts[text_key] = text
        if number is not None:
            facts[number_key] = number


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

    history = _history(ids, now) if historical else {}
    event_needs = [need for need in needs if isinstance(need, EventCountNeed)]
    counts = _event_counts(ids, event_needs, now)
    segment_needs = [need for need in needs if isinstance(need, SegmentNeed)]
    memberships = _memberships(ids, segment_needs, now)

    consent_needs = [need for need in needs if isinstance(need, ConsentNeed)]
    consent = consent_current(ids) if consent_needs else {}
    # Each key is a digest: name them once per batch, not once per contact.
    event_keys = [need.key for need in event_needs]
    segment_keys = [
        (need.slug, (need.member_key, need.entered_key, need.exited_key)) for need in segment_needs
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
            "inactive_days": elapsed(now, last_activity, "day"),
            "purchase_days": elapsed(now, last_purchase, "day"),
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
        for slug, keys in segment_keys:
            _membership_facts(facts, memberships.get((cid, slug), []), now, keys)
        for channel, purpose, consent_key in consent_keys:
            status = consent.get(cid, {}).get((channel, purpose))
            facts[consent_key] = status == ConsentRecord.Status.GRANTED
        _attribute_facts(facts, row, attribute_keys)
        snapshots.append(facts)
    return snapshots
