"""Load the demo data once (a second run does nothing). Lives in devtools, above the domain
apps, which may use every app and is imported by none."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from devtools.demo import demo_data_load


class Command(BaseCommand):
    help = "Load the demo shop's contacts, events, segments, rules and campaigns, once."

    def handle(self, *args: Any, **options: Any) -> None:
        loaded = demo_data_load(stdout=self.stdout)
        if loaded:
            self.stdout.write(self.style.SUCCESS("Demo data loaded."))
        else:
            self.stdout.write("Demo data already loaded; nothing to do.")
