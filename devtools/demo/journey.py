"""The browse-follow-up journey in the demo shop: created with the catalogue (so `make run`
shows it in admin and its worker advances it), and a chapter of the scripted run in which
the contacts the entry rule enrolled move through it, some of them buying on the way.

Its waits are minutes long. The chapter does not sleep through them: it moves the waiting
contacts' due time to now, as the clock would, and lets the real worker advance them."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from decimal import Decimal
from io import StringIO
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import OutputWrapper
from django.db.models import Count, F, Q
from django.utils import timezone

from campaigns.models import Campaign, Delivery, MessageTemplate, Variant
from crm.services.contact_input import ContactInput
from crm.services.event_input import EventInput
from crm.services.events import events_ingest
from devtools.demo.report import heading, outbox_summary, progress_line
from devtools.demo.server import wait_idle
from journeys.flow import Flow
from journeys.models import Enrollment, Journey, StepRun

DEMO_DATA = Path(__file__).resolve().parents[1] / "demo_data"
JOURNEYS_YAML = DEMO_DATA / "journeys.yaml"
JOURNEY_RULES_YAML = DEMO_DATA / "journey_rules.yaml"
SLUG = "browse-follow-up"
FOLLOW_UP_EMAIL = {
    "name": "Browse follow-up (email)",
    "channel": "email",
    "subject": "Still looking, {{ contact.first_name|default:'there' }}? Delivery is on us",
    "preheader": "A few hours later, the things you looked at are still here.",
    "html_body": (
        "<p>Hi {{ contact.first_name|default:'there' }},</p>"
        "<p>You had a good look at <strong>{{ last_viewed.product_name|default:'something "
        "nice' }}</strong> earlier. Delivery is free until Sunday.</p>"
    ),
}
# How many of the enrolled shoppers the chapter has buy (the goal) along the way.
BUYERS = 2


def demo_journey_create() -> None:
    """The journey's own email campaign, the journey (enabled) and the rule that starts it.
    Idempotent: a second run imports the same files and changes nothing."""
    template, _ = MessageTemplate.objects.get_or_create(
        name=FOLLOW_UP_EMAIL["name"], defaults=FOLLOW_UP_EMAIL
    )
    campaign, created = Campaign.objects.get_or_create(
        slug="browse-follow-up-email",
        defaults={
            "name": "Browse follow-up",
            "channel": "email",
            "kind": Campaign.Kind.TRIGGERED,
            "status": Campaign.Status.SENDING,
        },
    )
    if created:
        Variant.objects.create(campaign=campaign, name="A", template=template)
    call_command("journeys", "import", str(JOURNEYS_YAML), stdout=StringIO())
    call_command("triggers", "import", str(JOURNEY_RULES_YAML), stdout=StringIO())


def journey_table(journey: Journey) -> list[str]:
    """The journey's totals and, per step of its current version, how many entered it, wait
    at it and are done with it."""
    enrollments = Enrollment.objects.filter(journey=journey)
    by_status = dict(enrollments.values_list("status").annotate(n=Count("id")).order_by())
    lines = [
        f"{journey.slug} v{journey.current_version.number if journey.current_version else '-'}: "
        f"enrolled {sum(by_status.values())}, "
        + ", ".join(
            f"{status} {by_status.get(status, 0)}"
            for status in ("active", "completed", "converted", "exited", "failed")
        )
    ]
    runs = StepRun.objects.filter(enrollment__journey=journey)
    entered = Counter(runs.values_list("step_id", flat=True))
    done = Counter(runs.filter(status=StepRun.Status.DONE).values_list("step_id", flat=True))
    waiting = Counter(
        enrollments.filter(status=Enrollment.Status.ACTIVE).values_list("step_id", flat=True)
    )
    steps = Flow(journey.current_version.steps if journey.current_version else [])
    lines.append(f"  {'step':<12} {'type':<7} {'entered':>7} {'waiting':>7} {'done':>5}")
    for step in steps:
        place = steps.place(str(step["id"]))
        name = "  " * place.depth + str(step["id"])
        lines.append(
            f"  {name:<12} {step['type']:<7} {entered[step['id']]:>7} "
            f"{waiting[step['id']]:>7} {done[step['id']]:>5}"
        )
    return lines


def _advance_until_settled(
    *, stdout: OutputWrapper, journey: Journey, timeout: float = 120
) -> None:
    """Ask the worker to advance what is due (beat would, every few seconds) until nothing
    of the journey is due and no contact is held at a send step."""
    from journeys.tasks import journeys_advance_due

    active = Enrollment.objects.filter(journey=journey, status=Enrollment.Status.ACTIVE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        journeys_advance_due.delay()
        time.sleep(1)
        wait_idle(stdout=stdout)
        # A send step holds its contact until the delivery is final and looks again every
        # 30 seconds; the worker has sent what it could, so the demo looks at once. A send
        # deferred by quiet hours keeps its contact at the step until it goes.
        now = timezone.now()
        held = _held_not_deferred(journey, now)
        Enrollment.objects.filter(pk__in=held).update(due_at=now)
        if not held and not active.filter(due_at__lte=now).exists():
            return
    stdout.write(f"  (enrollments still due after {timeout:.0f}s; see the worker log)\n")


def _held_not_deferred(journey: Journey, now: dt.datetime) -> list[int]:
    """Enrollments held at a send step whose delivery is not waiting for a later time."""
    held = dict(
        StepRun.objects.filter(
            enrollment__journey=journey,
            enrollment__status=Enrollment.Status.ACTIVE,
            status=StepRun.Status.RUNNING,
        ).values_list("enrollment_id", "outcome")
    )
    deliveries = {pk: outcome.get("delivery_id") for pk, outcome in held.items()}
    deferred = set(
        Delivery.objects.filter(
            pk__in=[d for d in deliveries.values() if d], not_before__gt=now
        ).values_list("pk", flat=True)
    )
    return sorted(pk for pk, delivery in deliveries.items() if delivery not in deferred)


def _clock_forward(journey: Journey, minutes: int) -> int:
    """The demo's clock moves on `minutes`: whoever would be due by then is due now. The
    engine measures a wait from when the contact reached its step, so that moves back too.
    Returns how many contacts are due now."""
    now = timezone.now()
    delta = dt.timedelta(minutes=minutes)
    active = Enrollment.objects.filter(journey=journey, status=Enrollment.Status.ACTIVE)
    active.filter(due_at__gt=now, due_at__lte=now + delta).update(
        due_at=F("due_at") - delta, step_started_at=F("step_started_at") - delta
    )
    return active.filter(due_at__lte=now).count()


def _buy(journey: Journey, *, count: int) -> list[str]:
    """`count` of the contacts waiting in the journey place an order, as the shop's API
    reports it: the goal takes them out at once, on ingest."""
    waiting = list(
        Enrollment.objects.filter(journey=journey, status=Enrollment.Status.ACTIVE)
        .select_related("contact")
        .order_by("contact__email")[:count]
    )
    orders = [
        EventInput(
            client_id=f"journey-order-{e.pk}",
            type="order_completed",
            occurred_at=timezone.now(),
            contact=ContactInput(email=e.contact.email),
            properties={"order_id": f"J-{e.pk}"},
            value=Decimal("42.50"),
            currency="EUR",
        )
        for e in waiting
    ]
    events_ingest(orders, source="demo-shop")
    return [str(e.contact.email) for e in waiting]


def demo_journey(*, stdout: OutputWrapper) -> None:
    heading(stdout, "10. A journey: browse follow-up, minute by minute")
    journey = Journey.objects.select_related("current_version").get(slug=SLUG)
    stdout.write(
        "Entered by the rule browse-follow-up-entry (3 product views in a day). Waits are "
        "minutes here; the demo moves the clock rather than sleeping.\n"
    )
    for line in journey_table(journey):
        stdout.write(line + "\n")
    buyers = _buy(journey, count=BUYERS)
    stdout.write(f"{', '.join(buyers)} ordered (EUR 42.50 each) while in the journey\n")
    wait_idle(stdout=stdout)
    for line in journey_table(journey):
        stdout.write(line + "\n")
    for minutes in (2, 3):
        due = _clock_forward(journey, minutes)
        stdout.write(f"\n{minutes} minutes later: {due} contacts due\n")
        _advance_until_settled(stdout=stdout, journey=journey)
        for line in journey_table(journey):
            stdout.write(line + "\n")
    converted = Enrollment.objects.filter(journey=journey, status=Enrollment.Status.CONVERTED)
    value = sum((e.conversion_value or Decimal(0)) for e in converted)
    stdout.write(f"converted {converted.count()} (EUR {value}) on the goal order_completed\n")
    exits = Counter(
        Enrollment.objects.filter(journey=journey)
        .exclude(Q(status=Enrollment.Status.ACTIVE))
        .values_list("exit_reason", flat=True)
    )
    stdout.write(f"left the journey: {dict(sorted(exits.items()))}\n")
    held = StepRun.objects.filter(
        enrollment__journey=journey,
        enrollment__status=Enrollment.Status.ACTIVE,
        status=StepRun.Status.RUNNING,
    ).count()
    stdout.write(
        f"held at a send step: {held} (deferred by quiet hours or a frequency cap: they "
        "stay at the step until the message goes or is skipped)\n"
    )
    for slug in ("browse-follow-up-email", "win-back-sms", "win-back-email"):
        stdout.write(f"  campaign {slug}: {progress_line(Campaign.objects.get(slug=slug))}\n")
    outbox_summary(stdout)
