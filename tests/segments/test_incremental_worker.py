"""Contacts touched by new events enter segments within seconds, through a real worker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.utils import timezone

from crm.services.contact_input import contact_input_parse
from crm.services.event_input import EventInput
from crm.services.events import events_ingest
from segments.models import Segment, SegmentMembership
from tests.worker import celery_worker, wait_for


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_new_event_puts_its_contact_into_a_behavioural_segment_through_the_worker(
    tmp_path: Path,
) -> None:
    segment = Segment.objects.create(
        slug="viewed-today",
        name="Viewed a product today",
        definition={
            "op": "and",
            "conditions": [
                {
                    "type": "behaviour",
                    "event": "product_viewed",
                    "operator": "at_least",
                    "count": 1,
                    "days": 1,
                }
            ],
        },
    )
    contact, errors = contact_input_parse({"email": "zoe@example.com"})
    assert contact is not None and not errors
    with celery_worker(tmp_path=tmp_path):
        accepted_at = time.monotonic()
        [result] = events_ingest(
            [
                EventInput(
                    client_id="evt-1",
                    type="product_viewed",
                    occurred_at=timezone.now(),
                    contact=contact,
                    properties={"product_id": "SKU-1"},
                )
            ],
            source="api",
        )
        membership = wait_for(
            lambda: SegmentMembership.objects.filter(
                segment=segment, contact_id=result.contact_id, exited_at__isnull=True
            ).first(),
            timeout=90,
            what="the worker to refresh the segment",
        )
        took = time.monotonic() - accepted_at
    assert membership.entered_at is not None
    print(f"event accepted -> segment member in {took:.1f}s (worker start-up included)")
