"""The scripted run's short chapters: a messy import, duplicates, data quality, segments and
analytics, trigger rules firing, a broadcast, and the totals at the end."""

from __future__ import annotations

import csv
from collections import Counter

from django.core.management import call_command
from django.core.management.base import OutputWrapper
from django.utils import timezone

from campaigns.models import Campaign, Delivery, Response
from crm.models import ConsentRecord, Contact, ContactMerge, Event, MergeCandidate
from crm.services.importing import import_contacts_file
from devtools.demo.data import CONTACTS_CSV, demo_analytics
from devtools.demo.report import heading, outbox_summary, progress_line, show_email
from devtools.demo.server import wait_idle
from segments.analytics.clv import clv_refresh, prediction_fit_summary
from triggers.models import TriggerFiring, TriggerRule


def demo_import(*, stdout: OutputWrapper) -> None:
    heading(stdout, "1. Import contacts from a messy CSV")
    run = import_contacts_file(path=CONTACTS_CSV, stdout=stdout)
    stdout.write(
        f"rows {run.rows_read}: created {run.rows_created}, updated {run.rows_updated}, "
        f"unchanged {run.rows_unchanged}, rejected {run.rows_rejected}\n"
    )
    with open(run.report_path, newline="", encoding="utf-8-sig") as handle:
        problems = [row for row in csv.DictReader(handle) if row.get("outcome") == "rejected"]
    for row in problems[:8]:
        stdout.write(f"  row {row['row']}, {row['column']}: {row['reason']}\n")
    again = import_contacts_file(path=CONTACTS_CSV)
    stdout.write(
        f"second run of the same file: created {again.rows_created}, "
        f"updated {again.rows_updated} (nothing changes)\n"
    )


def demo_duplicates(*, stdout: OutputWrapper) -> None:
    heading(stdout, "3. Duplicates")
    call_command("crm", "find-duplicates", stdout=stdout)
    open_candidates = MergeCandidate.objects.filter(status=MergeCandidate.Status.OPEN)
    for candidate in open_candidates.select_related("contact_a", "contact_b").order_by("-score")[
        :5
    ]:
        stdout.write(
            f"  {candidate.score:5.1f}  {candidate.contact_a}  ~  {candidate.contact_b}"
            f"  ({', '.join(candidate.reasons)})\n"
        )
    # The demo merges what a reviewer would: both pairs are the same person under a typo.
    call_command("crm", "merge-duplicates", "--min-score", "70", stdout=stdout)
    for merge in ContactMerge.objects.select_related("survivor"):
        snapshot = merge.duplicate_snapshot
        moved = ", ".join(f"{count} {name}" for name, count in merge.moved.items() if count)
        stdout.write(
            f"  merged {snapshot.get('email')} into {merge.survivor.email} "
            f"(moved: {moved or 'nothing'}; the old address is now an alias)\n"
        )


def demo_data_quality(*, stdout: OutputWrapper) -> None:
    heading(stdout, "4. Data quality")
    call_command("crm", "data-quality", stdout=stdout)


def demo_segments(*, stdout: OutputWrapper) -> None:
    heading(stdout, "5. Segments, lifecycle, RFM, clusters and predicted purchases")
    demo_analytics(stdout=stdout)
    call_command("segments", "list", stdout=stdout)
    # The daily refresh's prediction step: a fit, or the reason there is none (no crash).
    stdout.write(f"{prediction_fit_summary(clv_refresh())}\n")


def demo_triggers(*, stdout: OutputWrapper) -> None:
    heading(stdout, "6. Trigger rules firing")
    call_command("triggers", "sweep", stdout=stdout)
    wait_idle(stdout=stdout)
    for rule in TriggerRule.objects.order_by("slug"):
        firings = TriggerFiring.objects.filter(rule=rule)
        by_status = dict(Counter(firings.values_list("status", flat=True)))
        stdout.write(f"{rule.slug}: {firings.count()} firings {by_status}\n")
    for slug in ("browse-abandonment", "win-back-sms", "win-back-email"):
        stdout.write(f"  campaign {slug}: {progress_line(Campaign.objects.get(slug=slug))}\n")
    outbox_summary(stdout)
    sample = Delivery.objects.filter(
        campaign__slug="browse-abandonment", status=Delivery.Status.SENT
    ).first()
    if sample is not None:
        stdout.write("one of the browse-abandonment emails:\n")
        show_email(stdout, sample)


def demo_broadcast(*, stdout: OutputWrapper) -> Campaign:
    """Sends the november-picks broadcast now and returns it for the chapter after."""
    heading(stdout, "7. A broadcast to a segment")
    broadcast = Campaign.objects.get(slug="november-picks")
    # Scheduled for tomorrow 10:00 local in `make run`; the demo sends it now.
    Campaign.objects.filter(pk=broadcast.pk).update(
        scheduled_at=timezone.now(), send_at_local_time=None
    )
    call_command("campaigns", "send", "november-picks", stdout=stdout)
    wait_idle(stdout=stdout)
    broadcast.refresh_from_db()
    stdout.write(f"november-picks is {broadcast.status}: {progress_line(broadcast)}\n")
    outbox_summary(stdout)
    return broadcast


def demo_totals(*, stdout: OutputWrapper) -> None:
    heading(stdout, "Totals")
    stdout.write(
        f"contacts {Contact.objects.count()}, events {Event.objects.count()}, "
        f"consent ledger entries {ConsentRecord.objects.count()}, "
        f"deliveries {Delivery.objects.count()}, responses {Response.objects.count()}\n"
    )
    outbox_summary(stdout)
