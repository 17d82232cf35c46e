"""Real Celery worker processes: exactly one send per delivery when two workers are given
the same batch, through the real anymail Postmark backend to the fake provider."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from campaigns.models import Campaign, Delivery
from campaigns.services.launch import campaign_launch
from campaigns.tasks import deliveries_send
from tests.campaigns.dispatch_helpers import campaign_for, emails_to, grant, provider_env
from tests.factories import ContactFactory
from tests.worker import celery_worker, wait_for


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_two_workers_given_the_same_batch_send_each_delivery_once(
    tmp_path: Path, fake_provider: Any
) -> None:
    contacts = ContactFactory.create_batch(60)
    for contact in contacts:
        grant(contact)
    campaign = campaign_for(contacts, kind=Campaign.Kind.BROADCAST)
    # Slow answers keep the first worker busy while the second takes the duplicate batch.
    fake_provider.behaviour.delay_seconds = 0.03
    env = provider_env(fake_provider.url)
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
    with (
        celery_worker(tmp_path=tmp_path / "one", queues="dispatch", **env),
        celery_worker(tmp_path=tmp_path / "two", queues="dispatch", **env),
    ):
        # The launch publishes the batch once after commit; the same ids go out twice more,
        # as a redelivered or duplicated task would.
        result = campaign_launch(campaign=campaign)
        assert result.batches == 1
        ids = list(Delivery.objects.filter(campaign=campaign).values_list("pk", flat=True))
        deliveries_send.delay(ids)
        deliveries_send.delay(ids)

        def all_done() -> bool:
            return not Delivery.objects.filter(
                campaign=campaign, status__in=["queued", "sending"]
            ).exists()

        wait_for(all_done, timeout=120, what="the workers to send the campaign")
    sent_to = Counter(emails_to(fake_provider))
    assert len(sent_to) == 60
    assert set(sent_to.values()) == {1}
    assert set(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True)) == {
        "sent"
    }
    logs = [(tmp_path / name / "worker.log").read_text() for name in ("one", "two")]
    # Both workers took a copy of the batch (Celery logs "Task <name>[<id>] received").
    assert all("Task campaigns.tasks.deliveries_send[" in log for log in logs), logs
