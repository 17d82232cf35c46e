"""`python manage.py campaigns <subcommand>`.

    campaigns send SLUG            launch now: deliveries written, batches enqueued for workers
    campaigns send SLUG --wait     ... and show progress until nothing is queued or sending
    campaigns send SLUG --inline   launch and send in this process (no worker needed)
    campaigns report SLUG [--json] the A/B report: per-variant figures, statistics, decision

Subcommands are methods named `_<name>` with an `_add_<name>` for their arguments, so the A/B
issue's `report` is one pair of methods more.
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

ACTIVE = (Delivery.Status.QUEUED, Delivery.Status.SENDING)


def _summary(progress: dict[str, Any]) -> str:
    by_status = progress["by_status"]
    parts = [f"{status} {count}" for status, count in sorted(by_status.items())]
    reasons = progress["by_reason"]
    text = f"{progress['total']} deliveries: " + (", ".join(parts) or "none")
    if reasons:
        text += " | reasons: " + ", ".join(f"{r} {n}" for r, n in sorted(reasons.items()))
    return text


class Command(BaseCommand):
    help = (
        "Campaigns: `send SLUG [--wait] [--inline]`, `report SLUG [--json]`. "
        "Run `campaigns <subcommand> --help`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
        send = subparsers.add_parser("send", help="Launch a campaign now, with progress.")
        self._add_send(send)
        report = subparsers.add_parser(
            "report", help="The A/B report of a campaign (docs/ab-testing.md)."
        )
        self._add_report(report)

    def _add_send(self, parser: CommandParser) -> None:
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

    def _add_report(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="The campaign's slug, e.g. spring-sale.")
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the whole report as JSON (the figures of the admin results page).",
        )

    def _report(self, options: dict[str, Any]) -> None:
        from campaigns.abtest.report import campaign_report, report_lines

        try:
            campaign = Campaign.objects.get(slug=options["slug"])
        except Campaign.DoesNotExist as exc:
            raise CommandError(f"No campaign with slug {options['slug']!r}.") from exc
        report = campaign_report(campaign=campaign)
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, ensure_ascii=False))
            return
        for line in report_lines(report):
            self.stdout.write(line)

    def handle(self, *args: Any, **options: Any) -> None:
        name = options.get("subcommand")
        if not name:
            raise CommandError("choose a subcommand: send, report")
        getattr(self, f"_{name.replace('-', '_')}")(options)

    def _send(self, options: dict[str, Any]) -> None:
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
        self.stdout.write(
            f"Launched {campaign.slug}: {result.created} new deliveries "
            f"({result.holdout} holdout, {result.waiting_local_time} waiting for local time), "
            f"{result.enqueued} due now"
            + ("." if options["inline"] else f" in {result.batches} batches for the workers.")
        )
        if options["inline"]:

            def on_batch(batch: SendReport) -> None:
                self.stdout.write(f"  {_summary(campaign_progress(campaign=campaign))}")

            campaign_drain(campaign=campaign, on_batch=on_batch)
        elif options["wait"]:
            deadline = time.monotonic() + options["timeout"]
            while True:
                progress = campaign_progress(campaign=campaign)
                self.stdout.write(f"  {_summary(progress)}")
                if not any(progress["by_status"].get(status) for status in ACTIVE):
                    break
                if time.monotonic() > deadline:
                    raise CommandError("Timed out waiting; the workers carry on.")
                time.sleep(1)
        progress = campaign_progress(campaign=campaign)
        campaign.refresh_from_db(fields=["status"])
        self.stdout.write(self.style.SUCCESS(f"{campaign.slug} is {campaign.status}."))
        self.stdout.write(f"  {_summary(progress)}")
        deferred = progress["by_status"].get(Delivery.Status.DEFERRED, 0)
        if deferred:
            self.stdout.write(
                f"  {deferred} deferred deliveries go out when due (the every-minute sweep)."
            )
