"""`python manage.py journeys import|export|advance|status|explain|move`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.management import (
    Subcommand,
    SubcommandCommand,
    import_report_write,
    input_text,
    output_write,
)


def _export(command: BaseCommand, options: dict[str, Any]) -> None:
    from journeys.models import Journey
    from journeys.yaml_io import journeys_export

    slugs = [options["slug"]] if options.get("slug") else None
    if slugs and not Journey.objects.filter(slug__in=slugs).exists():
        raise CommandError(f"no journey with the slug {options['slug']!r}")
    target = output_write(command, journeys_export(slugs=slugs), options.get("output"))
    if target is not None:
        command.stdout.write(f"wrote {target}\n")


def _import(command: BaseCommand, options: dict[str, Any]) -> None:
    from journeys.yaml_io import journeys_import

    path = Path(options["file"])
    report = journeys_import(text=input_text(path))
    if not report.errors and not report.created and not report.updated:
        command.stdout.write(f"nothing changed: {len(report.unchanged)} journey(s) up to date\n")
        return
    import_report_write(command, path, report)


def _advance(command: BaseCommand, options: dict[str, Any]) -> None:
    from journeys.engine.due import due_advance

    report, _ = due_advance(budget_seconds=options["budget"])
    if options["json"]:
        command.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        command.stdout.write(report.summary() + "\n")


def _advance_arguments(parser: CommandParser) -> None:
    parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
    parser.add_argument(
        "--budget",
        type=float,
        default=300.0,
        help="Stop claiming after this many seconds, e.g. 60 (default 300).",
    )


def _export_arguments(parser: CommandParser) -> None:
    parser.add_argument("slug", nargs="?", help="Only this journey.")
    parser.add_argument("--output", "-o", help="A file to write instead of stdout.")


def _import_arguments(parser: CommandParser) -> None:
    parser.add_argument("file")


def _journey(slug: str) -> Any:
    from journeys.models import Journey

    journey = Journey.objects.select_related("current_version").filter(slug=slug).first()
    if journey is None:
        raise CommandError(f"no journey with the slug {slug!r}")
    return journey


def _status(command: BaseCommand, options: dict[str, Any]) -> None:
    from journeys.reports import journey_status, status_table

    journey = _journey(options["slug"])
    version = None
    if options.get("version") is not None:
        version = journey.versions.filter(number=options["version"]).first()
        if version is None:
            raise CommandError(f"{journey.slug} has no version {options['version']}")
    status = journey_status(journey, version=version)
    if options.get("json"):
        command.stdout.write(json.dumps(status, indent=2) + "\n")
        return
    command.stdout.write("\n".join(status_table(status)) + "\n")


def _status_arguments(parser: CommandParser) -> None:
    parser.add_argument("slug")
    parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
    parser.add_argument(
        "--version", type=int, help="Counts of this version number (default: the current one)."
    )


def _explain(command: BaseCommand, options: dict[str, Any]) -> None:
    from journeys.reports import contact_find, journey_explain

    journey = _journey(options["slug"])
    contact = contact_find(options["contact"])
    if contact is None:
        raise CommandError(f"no contact with the id or email {options['contact']!r}")
    command.stdout.write("\n".join(journey_explain(journey, contact)) + "\n")


def _explain_arguments(parser: CommandParser) -> None:
    parser.add_argument("slug")
    parser.add_argument("contact", help="A contact id or email address.")


class Command(SubcommandCommand):
    app = "journeys"
    help = (
        "Journeys: YAML export/import, advance due steps now, status counts, explain one "
        "contact's path, move contacts between versions."
    )
    subcommands = [
        Subcommand(
            "export", "Write journeys as YAML (stdout by default).", _export, _export_arguments
        ),
        Subcommand(
            "import", "Validate and load a YAML file (all or nothing).", _import, _import_arguments
        ),
        Subcommand(
            "advance",
            "Run the steps that are due now (what beat runs every 15 s) and say what moved.",
            _advance,
            _advance_arguments,
        ),
        Subcommand(
            "status",
            "Counts per status and per step (--json for JSON).",
            _status,
            _status_arguments,
        ),
        Subcommand(
            "explain",
            "The path one contact took through a journey and why.",
            _explain,
            _explain_arguments,
        ),
        Subcommand.from_module("move", "journeys.cli.move"),
    ]
