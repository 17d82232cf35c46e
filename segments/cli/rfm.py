"""`segments rfm [--period-days N]`: score every buyer and print the distribution."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from segments.analytics.rfm import rfm_compute
from segments.analytics.segments_refresh import analytics_segments_refresh
from segments.models.analytics import RFMGroup

HELP = "Compute RFM quintile scores and groups for every buyer, and print the distribution."


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--period-days",
        type=int,
        default=None,
        help=f"purchases of the last N days (default RFM_PERIOD_DAYS={settings.RFM_PERIOD_DAYS})",
    )
    parser.add_argument(
        "--no-segments",
        action="store_true",
        help="do not refresh the segments that use RFM conditions afterwards",
    )


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    def progress(done: int, total: int) -> None:
        command.stdout.write(f"  saved {done:,}/{total:,} scores ({done / total:.0%})")

    try:
        result = rfm_compute(period_days=options["period_days"], progress=progress)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    out = command.stdout
    out.write(
        f"RFM over the last {result.period_days} days, computed "
        f"{result.computed_at:%Y-%m-%d %H:%M} UTC: {result.scored:,} buyers scored"
        + (f", {result.removed:,} no longer scored" if result.removed else "")
    )
    if not result.scored:
        out.write("No purchases in the period: nobody to score.")
        return
    out.write("")
    out.write(f"{'group':<20}{'contacts':>10}{'share':>8}")
    for group in RFMGroup:
        count = result.by_group.get(group.value, 0)
        out.write(f"{group.label:<20}{count:>10,}{count / result.scored:>8.1%}")
    out.write("")
    out.write(f"{'score':<12}" + "".join(f"{s:>10}" for s in range(1, 6)))
    for letter, name in (("R", "recency"), ("F", "frequency"), ("M", "monetary")):
        counts = result.by_score.get(letter, {})
        out.write(f"{letter} {name:<10}" + "".join(f"{counts.get(s, 0):>10,}" for s in range(1, 6)))
    if not options["no_segments"]:
        refreshed = analytics_segments_refresh(types={"rfm"})
        if refreshed:
            out.write(f"Refreshed {len(refreshed)} segment(s) that use RFM conditions.")
