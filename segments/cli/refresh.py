"""`segments refresh [SLUG ...|--all]`: a full refresh with progress on the terminal."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from segments.models.definitions import Segment
from segments.services import RefreshProgress, segments_refresh

HELP = "Refresh the memberships of the named segments (or --all active ones) in full."


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument("slugs", nargs="*", metavar="SLUG", help="segments to refresh")
    parser.add_argument("--all", action="store_true", help="every active segment")
    parser.add_argument(
        "--no-dependents",
        action="store_true",
        help="do not also refresh the segments that refer to the named ones",
    )


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    slugs: list[str] = options["slugs"]
    if options["all"] == bool(slugs):
        raise CommandError("name segments by slug, or give --all (not both)")
    if options["all"]:
        segments = list(Segment.objects.filter(is_active=True))
    else:
        found = {segment.slug: segment for segment in Segment.objects.filter(slug__in=slugs)}
        missing = [slug for slug in slugs if slug not in found]
        if missing:
            raise CommandError(f"no segment with slug {', '.join(repr(s) for s in missing)}")
        segments = [found[slug] for slug in slugs]

    def progress(step: RefreshProgress) -> None:
        share = step.checked / step.total if step.total else 1.0
        command.stdout.write(
            f"  {step.segment.slug}: {step.checked:,}/{step.total:,} contacts ({share:.0%}), "
            f"+{step.entered:,} entered, -{step.exited:,} left"
        )

    results = segments_refresh(
        segments=segments,
        with_dependents=not options["no_dependents"],
        progress=progress,
        collect_ids=False,
    )
    for slug, result in results.items():
        command.stdout.write(
            command.style.SUCCESS(
                f"{slug}: {result.size:,} members ({result.entered:,} entered, "
                f"{result.exited:,} left)"
            )
        )
