"""A real Celery worker process consumes tasks from the configured kind of broker."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

from config.celery import app as celery_app
from crm.models import DoubleOptIn
from crm.tasks import optin_expire_pending
from tests.factories import ContactFactory
from tests.worker import celery_worker, wait_for


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_process_expires_stale_opt_in_requests_queued_through_the_broker(
    tmp_path: Path,
) -> None:
    contact = ContactFactory.create()
    stale = DoubleOptIn.objects.create(
        contact=contact, expires_at=timezone.now() - dt.timedelta(hours=1)
    )
    fresh = DoubleOptIn.objects.create(
        contact=contact, expires_at=timezone.now() + dt.timedelta(hours=71)
    )
    with celery_worker(tmp_path=tmp_path) as broker:
        with celery_app.connection_for_write(broker) as conn:
            optin_expire_pending.apply_async(connection=conn)

        def stale_expired() -> bool:
            stale.refresh_from_db()
            return stale.status == DoubleOptIn.Status.EXPIRED

        wait_for(stale_expired, timeout=90, what="the worker to expire the stale request")
    fresh.refresh_from_db()
    assert fresh.status == DoubleOptIn.Status.PENDING
    assert "succeeded" in (tmp_path / "worker.log").read_text()
