"""Load the demo data once (a second run does nothing). Lives in devtools, above the domain
apps, which may use every app and is imported by none."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from devtools.demo.data import demo_data_load

HELP = "Load the demo shop's contacts, events, segments, rules and campaigns, once."


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    loaded = demo_data_load(stdout=command.stdout)
    if loaded:
        command.stdout.write(command.style.SUCCESS("Demo data loaded."))
    else:
        command.stdout.write("Demo data already loaded; nothing to do.")
