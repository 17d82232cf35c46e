"""`python manage.py triggers export|import|dry-run|sweep`."""

from __future__ import annotations

import datetime as dt
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
from triggers.models import TriggerRule


def _export(command: BaseCommand, options: dict[str, Any]) -> None:
    from triggers.yaml_io import rules_export

    text = rules_export(slugs=options["slugs"] or None)
    target = output_write(command, text, options.get("output"))
    if target is not None:
        command.stdout.write(f"wrote {text.count(chr(10) + '- name:')} rule(s) to {target}\n")


def _import(command: BaseCommand, options: dict[str, Any]) -> None:
    from triggers.yaml_io import rules_import

    path = Path(options["file"])
    import_report_write(command, path, rules_import(text=input_text(path)))


def _dry_run(command: BaseCommand, options: dict[str, Any]) -> None:
    from triggers.selectors import rule_dry_run

    rule = TriggerRule.objects.filter(slug=options["slug"]).first()
    if rule is None:
        raise CommandError(f"no rule with the slug {options['slug']!r}")
    since = None
    if options.get("since"):
        try:
            since = dt.date.fromisoformat(options["since"])
        except ValueError as exc:
            raise CommandError(
                f"--since: a date such as 2026-03-01, not {options['since']!r}"
            ) from exc
    result = rule_dry_run(snapshot=dict(rule.snapshot()), rule_id=rule.pk, since=since)
    command.stdout.write(
        f"{rule.slug} (v{rule.version}{'' if rule.enabled else ', disabled'}): "
        f"{len(result.would_fire_now)} contact(s) would fire now "
        f"({result.candidates_now} candidate(s) checked); nothing was recorded or sent\n"
    )
    for cid in result.would_fire_now[:20]:
        command.stdout.write(f"  contact {cid}\n")
    if len(result.would_fire_now) > 20:
        command.stdout.write(f"  … {len(result.would_fire_now) - 20} more\n")
    command.stdout.write("would have fired per day (UTC):\n")
    for day, count in result.per_day:
        command.stdout.write(f"  {day.isoformat()}  {count:6d}  {'#' * min(count, 60)}\n")


def _sweep(command: BaseCommand, options: dict[str, Any]) -> None:
    from triggers.services.evaluation import pending_evaluate
    from triggers.services.sweep import triggers_sweep

    def progress(slug: str, checked: int, fired: int) -> None:
        command.stdout.write(f"\r  {slug}: {checked} checked, {fired} fired", ending="")
        command.stdout.flush()

    results = triggers_sweep(slugs=set(options["slugs"]) or None, progress=progress)
    if results:
        command.stdout.write("\n")
    for slug, result in results.items():
        command.stdout.write(
            f"{slug}: {result.evaluated} candidate(s) checked, {result.matched} matched, "
            f"{result.fired} fired\n"
        )
    drained = pending_evaluate()
    if drained.evaluated:
        command.stdout.write(
            f"queued contacts: {drained.evaluated} checked, {drained.fired} fired\n"
        )
    if not results:
        command.stdout.write("no enabled rule depends on the clock\n")


def _export_arguments(parser: CommandParser) -> None:
    parser.add_argument("--output", "-o", help="A file to write instead of stdout.")
    parser.add_argument("slugs", nargs="*", help="Only these rules.")


def _import_arguments(parser: CommandParser) -> None:
    parser.add_argument("file")


def _dry_run_arguments(parser: CommandParser) -> None:
    parser.add_argument("slug")
    parser.add_argument("--since", help="Backtest from this date (YYYY-MM-DD); 30 days default.")


def _sweep_arguments(parser: CommandParser) -> None:
    parser.add_argument("slugs", nargs="*", help="Only these rules (any rule may be named).")


class Command(SubcommandCommand):
    app = "triggers"
    help = "Trigger rules: export to / import from YAML, dry-run a rule, sweep time conditions."
    subcommands = [
        Subcommand(
            "export",
            "Write every rule as YAML (stdout by default).",
            _export,
            _export_arguments,
        ),
        Subcommand(
            "import", "Validate and load a YAML file (all or nothing).", _import, _import_arguments
        ),
        Subcommand(
            "dry-run",
            "Who would fire now; firings per day (no writes).",
            _dry_run,
            _dry_run_arguments,
        ),
        Subcommand(
            "sweep",
            "Evaluate rules whose conditions move with time.",
            _sweep,
            _sweep_arguments,
        ),
    ]
