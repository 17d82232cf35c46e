"""Frequency caps across campaigns: at most N messages on a channel in D local calendar days.

What counts: the contact's deliveries on that channel, of any non-transactional campaign,
that are sending, sent, delivered or uncertain (uncertain ones may have reached the person),
timed by sent_at, or claimed_at while still sending. Because a delivery is claimed (status
sending, claimed_at now) before its cap is checked, two workers checking the same contact at
once each see the other's claim: the race can defer one message too many, never send one too
many.

One query per batch loads the recent history of the batch's contacts; the windows are then
cut in each contact's own zone in Python.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db.models.functions import Coalesce

from campaigns.models import Delivery, FrequencyCap
from campaigns.services.scheduling import local_days_window_start, next_local_day_start

COUNTED_STATUSES = (
    Delivery.Status.SENDING,
    Delivery.Status.SENT,
    Delivery.Status.DELIVERED,
    Delivery.Status.UNCERTAIN,
)


@dataclass
class CapState:
    caps: list[tuple[int, int]]  # (max messages, days)
    history: dict[int, list[dt.datetime]] = field(default_factory=lambda: defaultdict(list))


def cap_state_load(
    *,
    channel: str,
    contact_ids: Iterable[int],
    exclude_delivery_ids: Iterable[int],
    now: dt.datetime,
) -> CapState:
    caps = list(
        FrequencyCap.objects.filter(channel=channel, is_active=True).values_list(
            "max_messages", "days"
        )
    )
    state = CapState(caps=caps)
    if not caps:
        return state
    longest = max(days for _, days in caps)
    # One extra day covers the widest gap between UTC and any local midnight.
    since = now - dt.timedelta(days=longest + 1)
    rows = (
        Delivery.objects.filter(
            contact_id__in=list(contact_ids),
            channel=channel,
            status__in=COUNTED_STATUSES,
            campaign__is_transactional=False,
        )
        .exclude(pk__in=list(exclude_delivery_ids))
        .annotate(at=Coalesce("sent_at", "claimed_at"))
        .filter(at__gte=since)
        .values_list("contact_id", "at")
    )
    for contact_id, at in rows:
        state.history[contact_id].append(at)
    return state


def cap_blocked_until(
    state: CapState, *, contact_id: int, zone: ZoneInfo, now: dt.datetime
) -> dt.datetime | None:
    """None when one more message fits every cap; else the start of the contact's next
    local day, when the window has moved and the cap is worth checking again."""
    history = state.history.get(contact_id, [])
    for max_messages, days in state.caps:
        start = local_days_window_start(now, zone, days)
        if sum(1 for at in history if at >= start) >= max_messages:
            return next_local_day_start(now, zone)
    return None


def cap_count(state: CapState, *, contact_id: int, now: dt.datetime) -> None:
    """Count a message this batch decided to send, for the next one to the same contact."""
    state.history[contact_id].append(now)
