"""`python manage.py journeys move SLUG --from-version N [--map OLD=NEW ...] [--apply]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

HELP = "Move the contacts waiting on an older version onto the current one."
DESCRIPTION = (
    "Without --apply, prints what would move. A step the current version removed that holds "
    "contacts needs --map STEP=TARGET (a step id of the current version, or exit)."
)


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument("slug")
    parser.add_argument("--from-version", type=int, required=True, help="e.g. 1")
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="Where the contacts of a removed step go, e.g. wait-day=email-1 or sms-1=exit.",
    )
    parser.add_argument("--apply", action="store_true", help="Move them (default: only show).")


def _mapping(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            raise CommandError(f"--map {pair!r}: write OLD=NEW, e.g. wait-day=exit.")
        mapping[old.strip()] = new.strip()
    return mapping


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    from journeys.models import Journey
    from journeys.moving import MoveRefused, enrollments_move, move_plan

    journey = Journey.objects.filter(slug=options["slug"]).first()
    if journey is None:
        raise CommandError(f"no journey with the slug {options['slug']!r}")
    source = journey.versions.filter(number=options["from_version"]).first()
    if source is None:
        raise CommandError(f"{journey.slug} has no version {options['from_version']}")
    try:
        plan = move_plan(journey=journey, source=source, mapping=_mapping(options["map"]))
        for old, (new, count) in plan.moves.items():
            where = "stays at it" if new == old else f"goes to {new}"
            command.stdout.write(f"{old}: {count} contact(s) {where}\n")
        if options["apply"]:
            moved = enrollments_move(plan)
            command.stdout.write(
                f"moved {moved} contact(s) from version {source.number} to "
                f"version {plan.target.number}\n"
            )
        elif plan.unmapped:
            raise MoveRefused(
                [
                    f"{step}: {count} contact(s) need --map {step}=…"
                    for step, count in plan.unmapped.items()
                ]
            )
        else:
            command.stdout.write("nothing moved: add --apply to move them\n")
    except MoveRefused as refused:
        raise CommandError("\n".join(refused.problems)) from refused
