"""A scripted run of the main job on the embedded default, with a readable summary."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand

from devtools.demo.run import demo_run

HELP = "Run the demo end to end in the current VAR_DIR and print what happened."


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    call_command("migrate", interactive=False, verbosity=0)
    demo_run(stdout=command.stdout)
