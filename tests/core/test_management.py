"""Every app's command is one SubcommandCommand: `manage.py <app> <subcommand>`."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError

from core.management import SubcommandCommand

APPS = ("crm", "segments", "campaigns", "triggers", "journeys", "devtools")


def test_each_app_has_one_command_and_it_takes_subcommands() -> None:
    ours = {name for name, app in get_commands().items() if app in APPS}
    assert ours == set(APPS)
    for app in APPS:
        command = load_command_class(app, app)
        assert isinstance(command, SubcommandCommand)
        assert all(sub.name == sub.name.lower().replace("_", "-") for sub in command.subcommands)


def test_help_lists_every_subcommand() -> None:
    command = load_command_class("crm", "crm")
    assert isinstance(command, SubcommandCommand)
    out = StringIO()
    command.create_parser("manage.py", "crm").print_help(out)
    for sub in command.subcommands:
        assert sub.name in out.getvalue()


def test_a_missing_subcommand_names_the_choices() -> None:
    with pytest.raises(CommandError, match="choose a subcommand: demo, load-demo-data"):
        call_command("devtools")


def test_the_common_options_work_after_the_subcommand_as_before_it() -> None:
    parser = load_command_class("crm", "crm").create_parser("manage.py", "crm")
    assert parser.parse_args(["data-quality", "-v", "0"]).verbosity == 0
    assert parser.parse_args(["-v", "2", "data-quality"]).verbosity == 2
    assert parser.parse_args(["data-quality"]).verbosity == 1
