"""A real Celery worker process consumes tasks from the configured kind of broker."""

from __future__ import annotations

import datetime as dt
import email
from email import policy
from pathlib import Path

import pytest
from django.test import Client
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
            # Celery takes the connection through **options, which its stubs do not list.
            optin_expire_pending.apply_async(connection=conn)  # type: ignore[call-arg]

        def stale_expired() -> bool:
            stale.refresh_from_db()
            return stale.status == DoubleOptIn.Status.EXPIRED

        wait_for(stale_expired, timeout=90, what="the worker to expire the stale request")
    fresh.refresh_from_db()
    assert fresh.status == DoubleOptIn.Status.PENDING
    assert "succeeded" in (tmp_path / "worker.log").read_text()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_subscriber_gets_the_confirmation_email_from_a_worker_process(
    tmp_path: Path, client: Client
) -> None:
    with celery_worker(tmp_path=tmp_path):
        response = client.post("/subscribe/", {"email": "Zoe@Example.COM", "consent": "on"})
        assert response.status_code == 200
        outbox = tmp_path / "outbox" / "email"
        [eml] = wait_for(
            lambda: list(outbox.glob("*.eml")), timeout=90, what="the confirmation email"
        )
    message = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert message["To"] == "Zoe@example.com"
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and "/subscribe/confirm/" in body.get_content()
