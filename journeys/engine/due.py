"""What beat and `journeys advance` run: claim due enrollments batch after batch and advance
them, handing full batches to other workers when there is more than one batch's work, until
nothing is due or a time budget is spent. And the wait_for check an event ingest asks for."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence

from django.utils import timezone

from journeys.engine.advance import enrollments_advance
from journeys.engine.claim import claim_lease, enrollments_claim
from journeys.engine.types import AdvanceReport
from journeys.models import Enrollment, Journey

BATCH = 500
BUDGET_SECONDS = 10.0

# Gives a claimed batch (ids, lease) to another worker.
HandOff = Callable[[list[int], dt.datetime], None]


def due_advance(
    *,
    batch: int = BATCH,
    budget_seconds: float = BUDGET_SECONDS,
    hand_off: HandOff | None = None,
    hand_off_max: int = 0,
    clock: Callable[[], dt.datetime] = timezone.now,
) -> tuple[AdvanceReport, int]:
    """Claim and advance what is due; returns (what was advanced here, batches handed off).
    A batch that is not full means nothing more is due: it always runs here."""
    report = AdvanceReport()
    handed = 0
    deadline = time.monotonic() + budget_seconds
    while time.monotonic() < deadline:
        now = clock()
        lease = claim_lease(now)
        ids = enrollments_claim(now=now, limit=batch, lease=lease)
        if not ids:
            break
        full = len(ids) == batch
        if full and hand_off is not None and handed < hand_off_max:
            hand_off(ids, lease)
            handed += 1
            continue
        report.merge(enrollments_advance(ids, lease=lease, now=now))
        if not full:
            break
    return report, handed


def waits_check(
    *, contact_ids: Sequence[int], event_types: Iterable[str], now: dt.datetime | None = None
) -> AdvanceReport:
    """Enrollments of these contacts waiting for one of these event types are claimed and
    advanced at once: the wait_for step's own check decides, in one query, which of them
    the new events match (matched ones move on, the others keep their timeout)."""
    now = now or timezone.now()
    lease = claim_lease(now)
    waiting = Enrollment.objects.filter(
        status=Enrollment.Status.ACTIVE,
        contact_id__in=list(contact_ids),
        awaiting_event__in=list(event_types),
        journey__status=Journey.Status.ACTIVE,
    )
    ids = sorted(waiting.values_list("pk", flat=True))
    if not ids:
        return AdvanceReport()
    # Still waiting when the UPDATE runs: a row that moved on meanwhile is not taken.
    waiting.filter(pk__in=ids).update(due_at=lease)
    return enrollments_advance(ids, lease=lease, now=now)
