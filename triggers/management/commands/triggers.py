"""`python manage.py triggers export|import|dry-run|sweep`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from triggers.models import TriggerRule


class Command(BaseCommand):
    help = "Trigger rules: export to / import from YAML, dry-run a rule, sweep time conditions."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        export = sub.add_parser("export", help="Write every rule as YAML (stdout by default).")
        export.add_argument("--output", "-o", help="A file to write instead of stdout.")
        export.add_argument("slugs", nargs="*", help="Only these rules.")
        load = sub.add_parser("import", help="Validate and load a YAML file (all or nothing).")
        load.add_argument("file")
        dry = sub.add_parser("dry-run", help="Who would fire now; firings per day (no writes).")
        dry.add_argument("slug")
        dry.add_argument("--since", help="Backtest from this date (YYYY-MM-DD); 30 days default.")
        sweep = sub.add_parser("sweep", help="Evaluate rules whose conditions move with time.")
        sweep.add_argument("slugs", nargs="*", help="Only these rules (any rule may be named).")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, "_" + options["action"].replace("-", "_"))(options)

    def _export(self, options: dict[str, Any]) -> None:
        from triggers.yaml_io import rules_export

        text = rules_export(slugs=options["slugs"] or None)
        if options.get("output"):
            target = Path(options["output"])
            if target.exists() and not target.is_file():
                raise CommandError(f"{target} is not a regular file; refusing to replace it.")
            target.write_text(text, encoding="utf-8")
            self.stdout.write(f"wrote {text.count(chr(10) + '- name:')} rule(s) to {target}\n")
        else:
            self.stdout.write(text, ending="")

    def _import(self, options: dict[str, Any]) -> None:
        from triggers.yaml_io import rules_import

        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        report = rules_import(text=path.read_text(encoding="utf-8"))
        if report.errors:
            for error in report.errors:
                self.stderr.write(f"{path}: {error}\n")
            raise CommandError(f"nothing imported: {len(report.errors)} problem(s) in {path}")
        self.stdout.write(
            f"created {len(report.created)}, updated {len(report.updated)}, "
            f"unchanged {len(report.unchanged)}\n"
        )
        for slug in report.created:
            self.stdout.write(f"  created {slug}\n")
        for slug in report.updated:
            self.stdout.write(f"  updated {slug}\n")

    def _dry_run(self, options: dict[str, Any]) -> None:
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
        self.stdout.write(
            f"{rule.slug} (v{rule.version}{'' if rule.enabled else ', disabled'}): "
            f"{len(result.would_fire_now)} contact(s) would fire now "
            f"({result.candidates_now} candidate(s) checked); nothing was recorded or sent\n"
        )
        for cid in result.would_fire_now[:20]:
            self.stdout.write(f"  contact {cid}\n")
        if len(result.would_fire_now) > 20:
            self.stdout.write(f"  … {len(result.would_fire_now) - 20} more\n")
        self.stdout.write("would have fired per day (UTC):\n")
        for day, count in result.per_day:
            self.stdout.write(f"  {day.isoformat()}  {count:6d}  {'#' * min(count, 60)}\n")

    def _sweep(self, options: dict[str, Any]) -> None:
        from triggers.services import pending_evaluate, triggers_sweep

        def progress(slug: str, checked: int, fired: int) -> None:
            self.stdout.write(f"\r  {slug}: {checked} checked, {fired} fired", ending="")
            self.stdout.flush()

        results = triggers_sweep(slugs=set(options["slugs"]) or None, progress=progress)
        if results:
            self.stdout.write("\n")
        for slug, result in results.items():
            self.stdout.write(
                f"{slug}: {result.evaluated} candidate(s) checked, {result.matched} matched, "
                f"{result.fired} fired\n"
            )
        drained = pending_evaluate()
        if drained.evaluated:
            self.stdout.write(
                f"queued contacts: {drained.evaluated} checked, {drained.fired} fired\n"
            )
        if not results:
            self.stdout.write("no enabled rule depends on the clock\n")
