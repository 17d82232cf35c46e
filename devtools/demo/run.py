"""The scripted `make demo` flow: a real worker and HTTP server, then each chapter in turn."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import OutputWrapper
from django.db import connection

from devtools.demo.abtest import demo_ab_test
from devtools.demo.chapters import (
    demo_broadcast,
    demo_data_quality,
    demo_duplicates,
    demo_import,
    demo_segments,
    demo_totals,
    demo_triggers,
)
from devtools.demo.ingest import demo_ingest
from devtools.demo.journey import demo_journey
from devtools.demo.obeyed import demo_obeyed
from devtools.demo.server import demo_worker, http_server
from devtools.demo_catalogue import demo_catalogue_create


def demo_run(*, stdout: OutputWrapper) -> None:
    # The demo signs its simulated Twilio replies and ESP webhooks itself; outside `make demo`
    # these secrets may be unset, and demo-only values are enough for this process.
    settings.TWILIO_AUTH_TOKEN = settings.TWILIO_AUTH_TOKEN or "demo-twilio-auth-token"
    settings.ANYMAIL.setdefault("WEBHOOK_SECRET", "demo:demo-webhook-secret")
    # The demo plays Postmark reporting a bounce. Only the configured ESP's tracking webhook
    # answers, so Postmark's is mounted for this process; mail still goes to .eml files
    # (EMAIL_BACKEND was settled when settings loaded).
    settings.EMAIL_ESP = settings.EMAIL_ESP or "postmark"
    stdout.write("Cadence demo\n============\n")
    stdout.write(f"database: {connection.vendor} ({settings.DATABASES['default']['NAME']})\n")
    stdout.write(f"outbox:   {settings.EMAIL_OUTBOX_DIR} and {settings.SMS_OUTBOX_FILE}\n")
    demo_catalogue_create()
    stdout.write(
        "catalogue: segments, templates, campaigns, the rules browse-abandonment and "
        "win-back (devtools/demo_data/rules.yaml) and the journey browse-follow-up with its "
        "entry rule (journeys.yaml, journey_rules.yaml), enabled\n"
    )
    with demo_worker(stdout=stdout), http_server() as base_url:
        _demo_chapters(stdout=stdout, base_url=base_url)


def _demo_chapters(*, stdout: OutputWrapper, base_url: str) -> None:
    demo_import(stdout=stdout)
    demo_ingest(stdout=stdout, base_url=base_url)
    demo_duplicates(stdout=stdout)
    demo_data_quality(stdout=stdout)
    demo_segments(stdout=stdout)
    demo_triggers(stdout=stdout)
    broadcast = demo_broadcast(stdout=stdout)
    demo_obeyed(stdout=stdout, base_url=base_url, broadcast=broadcast)
    demo_ab_test(stdout=stdout)
    demo_journey(stdout=stdout)
    demo_totals(stdout=stdout)
