"""`python manage.py campaigns <subcommand>`.

    campaigns send SLUG            launch now: deliveries written, batches enqueued for workers
    campaigns send SLUG --wait     ... and show progress until nothing is queued or sending
    campaigns send SLUG --inline   launch and send in this process (no worker needed)
    campaigns report SLUG [--json] the A/B report: per-variant figures, statistics, decision

Each subcommand is a handler `_<name>` and its arguments `_<name>_arguments`, declared in
Command.subcommands (core/management.py).
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.models import Campaign, Delivery
from campaigns.services.launch import DispatchError, campaign_launch
from campaigns.services.send import SendReport, campaign_drain
from campaigns.services.state import campaign_progress
from core.management import Subcommand, SubcommandCommand

ACTIVE = (Delivery.Status.QUEUED, Delivery.Status.SENDING)


def _summary(progress: dict[str, Any]) -> str:
    by_status = progress["by_status"]
    parts = [f"{status} {count}" for status, count in sorted(by_status.items())]
    reasons = progress["by_reason"]
    text = f"{progress['total']} deliveries: " + (", ".join(parts) or "none")
    if reasons:
        text += " | reasons: " + ", ".join(f"{r} {n}" for r, n in sorted(reasons.items()))
    return text


def _send_arguments(parser: CommandParser) -> None:
    parser.add_argument("slug", help="The campaign's slug, e.g. spring-sale.")
    parser.add_argument(
        "--occurrence",
        default="",
        help="For recurring campaigns: the occurrence key, e.g. 2026-03-08T10:00Z.",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="Show progress every second until nothing is queued or sending.",
    )
    parser.add_argument(
        "--inline",
        action="store_true",
        help="Send the batches in this process instead of enqueueing them for workers.",
    )
    parser.add_argument(
        "--timeout", type=int, default=3600, help="With --wait: give up after N seconds."
    )


def _send(command: BaseCommand, options: dict[str, Any]) -> None:
    try:
        campaign = Campaign.objects.get(slug=options["slug"])
    except Campaign.DoesNotExist as exc:
        raise CommandError(f"No campaign with slug {options['slug']!r}.") from exc
    try:
        result = campaign_launch(
            campaign=campaign, occurrence=options["occurrence"], enqueue=not options["inline"]
        )
    except DispatchError as exc:
        raise CommandError(str(exc)) from exc
    command.stdout.write(
        f"Launched {campaign.slug}: {result.created} new deliveries "
        f"({result.holdout} holdout, {result.waiting_local_time} waiting for local time), "
        f"{result.enqueued} due now"
        + ("." if options["inline"] else f" in {result.batches} batches for the workers.")
    )
    if options["inline"]:

        def on_batch(batch: SendReport) -> None:
            command.stdout.write(f"  {_summary(campaign_progress(campaign=campaign))}")

        campaign_drain(campaign=campaign, on_batch=on_batch)
    elif options["wait"]:
        deadline = time.monotonic() + options["timeout"]
        while True:
            progress = campaign_progress(campaign=campaign)
            command.stdout.write(f"  {_summary(progress)}")
            if not any(progress["by_status"].get(status) for status in ACTIVE):
                break
            if time.monotonic() > deadline:
                raise CommandError("Timed out waiting; the workers carry on.")
            time.sleep(1)
    progress = campaign_progress(campaign=campaign)
    campaign.refresh_from_db(fields=["status"])
    command.stdout.write(command.style.SUCCESS(f"{campaign.slug} is {campaign.status}."))
    command.stdout.write(f"  {_summary(progress)}")
    deferred = progress["by_status"].get(Delivery.Status.DEFERRED, 0)
    if deferred:
        command.stdout.write(
            f"  {deferred} deferred deliveries go out when due (the every-minute sweep)."
        )


def _report_arguments(parser: CommandParser) -> None:
    parser.add_argument("slug", help="The campaign's slug, e.g. spring-sale.")
    parser.add_argument(
        "--json",
        action="store_true",
        help="Print the whole report as JSON (the figures of the admin results page).",
    )


def _report(command: BaseCommand, options: dict[str, Any]) -> None:
    from campaigns.abtest.report import campaign_report, report_lines

    try:
        campaign = Campaign.objects.get(slug=options["slug"])
    except Campaign.DoesNotExist as exc:
        raise CommandError(f"No campaign with slug {options['slug']!r}.") from exc
    report = campaign_report(campaign=campaign)
    if options["json"]:
        command.stdout.write(json.dumps(report, indent=2, ensure_ascii=False))
        return
    for line in report_lines(report):
        command.stdout.write(line)


class Command(SubcommandCommand):
    app = "campaigns"
    help = (
        "Campaigns: `send SLUG [--wait] [--inline]`, `report SLUG [--json]`. "
        "Run `campaigns <subcommand> --help`."
    )
    subcommands = [
        Subcommand("send", "Launch a campaign now, with progress.", _send, _send_arguments),
        Subcommand(
            "report",
            "The A/B report of a campaign (docs/ab-testing.md).",
            _report,
            _report_arguments,
        ),
    ]
