"""The demo: data a newcomer sees after `make run`, and the scripted `make demo` flow.

Each issue extends demo_run until it shows the whole flow: import, events, segments, triggers
firing, messages in the outbox, responses and an A/B result."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import OutputWrapper
from django.db import connection

from crm.models import Contact, Event


def demo_data_load(*, stdout: OutputWrapper) -> bool:
    """Returns False when the demo data was already there."""
    return not Contact.objects.filter(external_id__startswith="demo-").exists()


def demo_run(*, stdout: OutputWrapper) -> None:
    stdout.write("Cadence demo\n============\n")
    stdout.write(f"database: {connection.vendor} ({settings.DATABASES['default']['NAME']})\n")
    stdout.write(f"broker:   {settings.CELERY_BROKER_URL}\n")
    stdout.write(f"outbox:   {settings.EMAIL_OUTBOX_DIR} and {settings.SMS_OUTBOX_FILE}\n")
    stdout.write(f"contacts: {Contact.objects.count()}, events: {Event.objects.count()}\n")
