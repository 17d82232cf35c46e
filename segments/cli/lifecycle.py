"""`segments lifecycle`: recompute every contact's lifecycle stage and record changes."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from segments.analytics.lifecycle import lifecycle_refresh
from segments.analytics.segments_refresh import analytics_segments_refresh
from segments.models.analytics import LifecycleStage

HELP = "Recompute lifecycle stages (new, active, dormant, churned, reactivated)."


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--no-segments",
        action="store_true",
        help="do not refresh the segments that use lifecycle conditions afterwards",
    )


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    out = command.stdout
    out.write(
        f"Thresholds: new {settings.LIFECYCLE_NEW_DAYS} days, dormant after "
        f"{settings.LIFECYCLE_DORMANT_DAYS}, churned after {settings.LIFECYCLE_CHURNED_DAYS} "
        "days without activity."
    )

    def progress(changed: int) -> None:
        out.write(f"  {changed:,} contacts changed stage so far")

    try:
        result = lifecycle_refresh(progress=progress)
    except ImproperlyConfigured as exc:
        raise CommandError(str(exc)) from exc
    out.write(f"{result.changed:,} contacts changed stage.")
    for (old, new), count in sorted(result.transitions.items()):
        out.write(f"  {old or '(none)'} -> {new}: {count:,}")
    out.write("")
    for stage in LifecycleStage:
        out.write(f"{stage.label:<14}{result.by_stage.get(stage.value, 0):>10,}")
    if not options["no_segments"]:
        refreshed = analytics_segments_refresh(types={"lifecycle"})
        if refreshed:
            out.write(f"Refreshed {len(refreshed)} segment(s) that use lifecycle conditions.")
