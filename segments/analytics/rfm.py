"""RFM: recency, frequency and monetary scores (1 to 5) per buyer, and the named groups.

One SQL query aggregates each contact's purchases in the period; numpy then scores each
measure on its distinct values (equal values, e.g. everyone who bought today, always share
a score) and maps (R, F+M) to a group; rows are upserted in batches and stale rows removed.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.db.models import Count, DecimalField, Max, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from crm.models import Event
from segments.analytics.storing import contact_rows_upsert
from segments.models.analytics import ContactRFM, RFMGroup

BATCH_SIZE = 5_000
ProgressCallback = Callable[[int, int], None]  # (done, total)

_G = RFMGroup
# The standard R x FM grid (FM = (F + M) / 2 rounded half up): rows R = 1..5, columns
# FM = 1..5. docs/segments.md shows the same table.
RFM_GRID: tuple[tuple[RFMGroup, ...], ...] = (
    (_G.LOST, _G.HIBERNATING, _G.AT_RISK, _G.AT_RISK, _G.CANT_LOSE_THEM),  # R = 1
    (_G.HIBERNATING, _G.HIBERNATING, _G.AT_RISK, _G.AT_RISK, _G.CANT_LOSE_THEM),  # R = 2
    (_G.ABOUT_TO_SLEEP, _G.ABOUT_TO_SLEEP, _G.NEED_ATTENTION, _G.LOYAL, _G.LOYAL),  # R = 3
    (_G.PROMISING, _G.POTENTIAL_LOYALIST, _G.POTENTIAL_LOYALIST, _G.LOYAL, _G.LOYAL),  # R = 4
    (_G.NEW_CUSTOMERS, _G.POTENTIAL_LOYALIST, _G.POTENTIAL_LOYALIST, _G.CHAMPIONS, _G.CHAMPIONS),
)


def rfm_group_for(*, recency: int, frequency: int, monetary: int) -> RFMGroup:
    """The named group of one (R, F, M) score triple."""
    for name, score in (("recency", recency), ("frequency", frequency), ("monetary", monetary)):
        if not 1 <= score <= 5:
            raise ValueError(f"{name} score must be 1 to 5, got {score}")
    fm = (frequency + monetary + 1) // 2
    return RFM_GRID[recency - 1][fm - 1]


@dataclass
class RFMResult:
    computed_at: dt.datetime
    period_days: int
    scored: int = 0
    removed: int = 0
    by_group: dict[str, int] = field(default_factory=dict)
    by_score: dict[str, dict[int, int]] = field(default_factory=dict)  # "R" -> {1: n, ...}


def _score_distinct_values(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Scores 1 to 5 (higher value, higher score) from each value's place among the distinct
    values: with k = 0 for the lowest of d distinct values, score = 1 + 5k // (d - 1), capped
    at 5. Equal values share a score, the lowest gets 1 and the highest 5, d < 5 distinct
    values get d distinct scores, and when every value is equal all get the middle score 3.

    Quintiles of contacts (NTILE) cut a run of equal values across scores by an arbitrary
    order: 17 of 20 buyers who bought today spanned scores 2 to 5, and giving a tie the
    lowest of them left all 17 at 3 (and Champions empty)."""
    if values.size == 0:
        return values.astype(np.int64)
    unique, position = np.unique(values, return_inverse=True)
    if unique.size == 1:
        return np.full(values.size, 3, dtype=np.int64)
    scores: npt.NDArray[np.int64] = np.minimum(
        5, 1 + (5 * position.astype(np.int64)) // (unique.size - 1)
    )
    return scores


def rfm_compute(
    *,
    period_days: int | None = None,
    now: dt.datetime | None = None,
    progress: ProgressCallback | None = None,
) -> RFMResult:
    """Scores every contact with at least one order_completed event in the last
    `period_days` (default settings.RFM_PERIOD_DAYS); contacts without one lose their row."""
    period = int(period_days if period_days is not None else settings.RFM_PERIOD_DAYS)
    if period < 1:
        raise ValueError(f"--period-days must be at least 1, got {period}")
    now = now or timezone.now()
    start = now - dt.timedelta(days=period)

    purchases = Event.objects.filter(
        type=Event.ORDER_COMPLETED,
        occurred_at__gt=start,
        occurred_at__lte=now,
        contact__is_erased=False,
    )
    rows = list(
        purchases.values("contact_id")
        .annotate(
            last=Max("occurred_at"),
            frequency=Count("id"),
            monetary=Coalesce(
                Sum("value"), Value(Decimal("0")), output_field=DecimalField(decimal_places=2)
            ),
        )
        .order_by("contact_id")
        .values_list("contact_id", "last", "frequency", "monetary")
        .iterator(chunk_size=BATCH_SIZE)
    )
    result = RFMResult(computed_at=now, period_days=period)
    total = len(rows)
    if total:
        contact_ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=total)
        recency_days = np.fromiter(
            ((now - row[1]).days for row in rows), dtype=np.int64, count=total
        )
        frequency = np.fromiter((row[2] for row in rows), dtype=np.int64, count=total)
        monetary = [Decimal(row[3]).quantize(Decimal("0.01")) for row in rows]
        cents = np.fromiter((int(m * 100) for m in monetary), dtype=np.int64, count=total)
        # Scored on whole days (not timestamps): fewer days since the last purchase is better.
        r_score = _score_distinct_values(-recency_days)
        f_score = _score_distinct_values(frequency)
        m_score = _score_distinct_values(cents)
        grid = np.array([[g.value for g in row] for row in RFM_GRID], dtype=object)
        groups = grid[r_score - 1, (f_score + m_score + 1) // 2 - 1]

        contact_rows_upsert(
            model=ContactRFM,
            row=lambda i: ContactRFM(
                contact_id=int(contact_ids[i]),
                recency_score=int(r_score[i]),
                frequency_score=int(f_score[i]),
                monetary_score=int(m_score[i]),
                group=str(groups[i]),
                recency_days=int(recency_days[i]),
                frequency=int(frequency[i]),
                monetary=monetary[i],
                period_days=period,
                computed_at=now,
            ),
            total=total,
            update_fields=[
                "recency_score",
                "frequency_score",
                "monetary_score",
                "group",
                "recency_days",
                "frequency",
                "monetary",
                "period_days",
                "computed_at",
            ],
            batch_size=BATCH_SIZE,
            progress=progress,
        )
        result.by_group = dict(Counter(str(g) for g in groups))
        for letter, scores in (("R", r_score), ("F", f_score), ("M", m_score)):
            values, counts = np.unique(scores, return_counts=True)
            result.by_score[letter] = {int(v): int(c) for v, c in zip(values, counts, strict=True)}
    result.scored = total
    # Contacts scored before but with no purchase in this period are no longer scored.
    result.removed, _ = ContactRFM.objects.filter(computed_at__lt=now).delete()
    return result
