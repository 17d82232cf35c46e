"""Celery tasks for provider webhooks, on the "webhooks" queue (CELERY_TASK_ROUTES): the
HTTP handlers only authenticate and enqueue, so that providers get their answer fast."""

from __future__ import annotations

from typing import Any

from campaigns.channels.provider_events import EmailEvent
from campaigns.services import provider_events
from core.tasks import shared_task


@shared_task
def email_event_record(event: EmailEvent) -> None:
    provider_events.email_event_apply(event=event)


@shared_task
def sms_status_record(
    message_sid: str, status: str, error_code: str, to_number: str, payload: dict[str, Any]
) -> None:
    provider_events.sms_status_apply(
        message_sid=message_sid,
        status=status,
        error_code=error_code,
        to_number=to_number,
        payload=payload,
    )
