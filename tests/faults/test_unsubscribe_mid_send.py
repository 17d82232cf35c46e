"""100 contacts unsubscribe (RFC 8058 one-click) while a real worker sends their campaign:
nothing reaches the provider for them after their unsubscribe commits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from campaigns.models import Delivery
from campaigns.services.launch import campaign_launch
from campaigns.tokens import one_click_unsubscribe_url
from devtools.processes import queues_purge
from tests.faults.helpers import Worker, broadcast, contacts_with_consent
from tests.worker import wait_for


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_100_unsubscribing_mid_send_get_0_messages_after_their_unsubscribe(
    settings: Any, tmp_path: Path, fake_provider: Any
) -> None:
    settings.PUBLIC_BASE_URL = "https://shop.example"
    contacts = contacts_with_consent(400, prefix="unsub")
    campaign = broadcast(contacts)
    leaving = contacts[-200::2]  # 100 contacts late in the send order
    fake_provider.behaviour.delay_seconds = 0.01
    queues_purge("dispatch")
    worker = Worker(tmp_path, fake_provider.url).start()  # default batches of 200
    committed_at: dict[str, int] = {}
    try:
        campaign_launch(campaign=campaign)
        wait_for(lambda: len(fake_provider.requests) >= 40, timeout=120, what="sending")
        client = Client()
        for contact in leaving:
            url = one_click_unsubscribe_url(
                contact_id=contact.pk,
                channel="email",
                purpose="marketing",
            )
            path = url.removeprefix(settings.PUBLIC_BASE_URL)
            answer = client.post(path, {"List-Unsubscribe": "One-Click"})
            assert answer.status_code == 200
            committed_at[str(contact.email)] = len(fake_provider.requests)
        wait_for(
            lambda: (
                not Delivery.objects.filter(
                    campaign=campaign, status__in=["queued", "sending"]
                ).exists()
            ),
            timeout=300,
            what="the send to finish",
        )
    finally:
        worker.stop()
    late = [
        (index, request.json()["To"])
        for index, request in enumerate(fake_provider.requests)
        if request.json()["To"] in committed_at and index >= committed_at[request.json()["To"]]
    ]
    skipped = Delivery.objects.filter(campaign=campaign, reason="no_consent").count()
    print(
        f"100 unsubscribed mid-send: {len(late)} messages after the unsubscribe committed, "
        f"{skipped} skipped for no consent"
    )
    assert late == []
    assert skipped > 0
