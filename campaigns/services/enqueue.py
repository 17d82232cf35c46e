"""Which deliveries a worker may claim, which are due, and putting them on the queue.

The pieces launch, send, state and the sweeps share: a delivery is claimable while queued or
deferred, due once its `not_before` has passed, and published to the "dispatch" queue in
batches of SEND_BATCH_SIZE ids only after the transaction that made it visible commits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.conf import settings
from django.db.models import Q

from campaigns.models import Delivery
from core.batching import chunks

CLAIMABLE = (Delivery.Status.QUEUED, Delivery.Status.DEFERRED)


def due_q(now: dt.datetime) -> Q:
    """Deliveries with no wait, or whose wait is over at `now`."""
    return Q(not_before__isnull=True) | Q(not_before__lte=now)


def deliveries_enqueue(ids: Sequence[int]) -> int:
    """Publish send tasks after the surrounding transaction commits (immediately outside
    one), so a worker never looks for a row that is not yet visible. Returns the batches."""
    from campaigns.tasks import deliveries_send

    batches = 0
    for chunk in chunks(ids, settings.SEND_BATCH_SIZE):
        deliveries_send.delay_on_commit(chunk)
        batches += 1
    return batches
