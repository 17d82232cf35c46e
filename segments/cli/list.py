"""`segments list`: every segment with its size and warnings."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from segments.models.definitions import Segment
from segments.selectors import segment_warnings

HELP = "List segments with their size, last refresh and warnings."


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument("--inactive", action="store_true", help="include inactive segments")


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    segments = Segment.objects.order_by("name")
    if not options["inactive"]:
        segments = segments.filter(is_active=True)
    if not segments.exists():
        command.stdout.write("No segments.")
        return
    for segment in segments:
        refreshed = (
            f"refreshed {segment.last_refreshed_at:%Y-%m-%d %H:%M}"
            if segment.last_refreshed_at
            else "never refreshed"
        )
        command.stdout.write(
            f"{segment.name} [{segment.slug}]: {segment.size:,} members, {refreshed}"
        )
        for warning in segment_warnings(segment=segment):
            command.stdout.write(command.style.WARNING(f"  warning: {warning.message}"))
