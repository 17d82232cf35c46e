"""Event-to-firing latency at a steady, modest pace with a warm worker: the "firing within 1 s
at p95" check of a running system (`make bench` measures it under 1,000 events/s).

    VAR_DIR=var/latency python manage.py devtools latency-probe [--events 40] [--pause 0.5]

Uses the current VAR_DIR's database (migrated here), starts a real worker, posts three
product views for a new contact per request through the API on a real HTTP server, and times
until the browse-abandonment rule's firing is recorded and its delivery queued."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from campaigns.models import Delivery
from crm.api.auth import api_key_create
from devtools.demo.server import http_server
from devtools.demo_catalogue import demo_catalogue_create
from devtools.processes import celery_worker
from triggers.models import TriggerFiring


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


HELP = "Measure event-to-firing and event-to-queued latency with a warm worker."


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument("--events", type=int, default=40, help="requests to time")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between them")


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    call_command("migrate", verbosity=0)
    demo_catalogue_create()
    key = api_key_create(name=f"latency-{time.time():.0f}")[1]
    fired: list[float] = []
    queued: list[float] = []
    log = settings.VAR_DIR / "latency-worker.log"
    queues = "default,dispatch,evaluation,webhooks"
    with celery_worker(log=log, queues=queues), http_server() as base:
        for n in range(options["events"]):
            email = f"latency{n}-{time.time_ns()}@example.com"
            now = timezone.now().isoformat()
            events = [
                {"id": f"{email}-{i}", "type": "product_viewed", "occurred_at": now,
                 "contact": {"email": email}, "properties": {"product_id": "SKU-1"}}
                for i in range(3)
            ]  # fmt: skip
            request = urllib.request.Request(  # noqa: S310 (our own server)
                f"{base}/api/v1/events",
                data=json.dumps({"events": events}).encode(),
                headers={"Authorization": f"Bearer {key}"},
                method="POST",
            )
            urllib.request.urlopen(request, timeout=30).read()  # noqa: S310
            accepted = timezone.now()
            firing = delivery = None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and (firing is None or delivery is None):
                firing = (
                    firing
                    or TriggerFiring.objects.filter(contact__email_key=email)
                    .values_list("fired_at", flat=True)
                    .first()
                )
                delivery = (
                    delivery
                    or Delivery.objects.filter(contact__email_key=email)
                    .values_list("created_at", flat=True)
                    .first()
                )
                time.sleep(0.02)
            if firing is not None:
                fired.append((firing - accepted).total_seconds())
            if delivery is not None:
                queued.append((delivery - accepted).total_seconds())
            time.sleep(options["pause"])
    for name, values in (("firing recorded", fired), ("delivery queued", queued)):
        if not values:
            command.stdout.write(f"event accepted -> {name}: none within 20 s")
            continue
        command.stdout.write(
            f"event accepted -> {name}: n={len(values)} p50={_percentile(values, 0.5):.3f}s "
            f"p95={_percentile(values, 0.95):.3f}s max={max(values):.3f}s"
        )
