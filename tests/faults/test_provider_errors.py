"""The fake provider answers 20 % 5xx and 429 and drops some connections after reading the
request: every delivery still ends in a final state, and none is sent twice after a
definite failure or an uncertain answer."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from typing import Any

import pytest
from django.utils import timezone

from campaigns.models import Delivery
from campaigns.services.launch import campaign_launch
from campaigns.services.sweeps import deliveries_enqueue_due
from tests.campaigns.dispatch_helpers import use_postmark
from tests.faults.helpers import broadcast, contacts_with_consent
from tests.worker import tasks_eager

FINAL = {"sent", "failed", "uncertain", "skipped"}


@pytest.mark.django_db(transaction=True)
def test_20_percent_5xx_and_429_and_3_percent_drops_end_final_and_never_twice(
    settings: Any, fake_provider: Any
) -> None:
    use_postmark(settings, fake_provider.url, timeout=2)
    count = 200
    rng = random.Random(9)
    script: list[int | str] = [
        rng.choice([500, 502, 503, 429]) if roll < 0.20 else ("drop" if roll < 0.23 else "ok")
        for roll in (rng.random() for _ in range(count * 6))
    ]
    fake_provider.behaviour.script = list(script)
    campaign = broadcast(contacts_with_consent(count))

    with tasks_eager():
        campaign_launch(campaign=campaign)
        moment = timezone.now()
        for _ in range(12):  # each sweep is the every-minute task, an hour of backoff later
            moment += dt.timedelta(hours=1)
            deliveries_enqueue_due(now=moment)

    # Which request got which answer: the script is consumed in arrival order, and a
    # dropped request is not recorded.
    used = len(script) - len(fake_provider.behaviour.script)
    answers = iter(fake_provider.requests)
    accepted: Counter[str] = Counter()
    attempts: Counter[str] = Counter()
    for step in script[:used]:
        if step == "drop":
            continue
        request = next(answers)
        address = request.json()["To"]
        attempts[address] += 1
        if step == "ok":
            accepted[address] += 1
    rows = list(Delivery.objects.filter(campaign=campaign))
    status = Counter(d.status for d in rows)
    print(f"{count} deliveries, {used} provider calls: {dict(status)}")
    assert {d.status for d in rows} <= FINAL
    assert max(accepted.values()) == 1  # never accepted twice
    for delivery in rows:
        if delivery.status == "sent":
            assert accepted[delivery.to_address] == 1
        if delivery.status == "uncertain":
            # Dropped after sending: not resent, whatever came before.
            assert accepted[delivery.to_address] == 0
        if delivery.status == "failed":
            assert (delivery.reason, delivery.attempts) == ("provider_error", 5)
            assert accepted[delivery.to_address] == 0
    assert status["sent"] > count * 0.8
