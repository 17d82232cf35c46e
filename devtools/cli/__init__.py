"""Subcommands of `python manage.py devtools <name>`, one module per subcommand, named in
devtools.management.commands.devtools.SUBCOMMANDS; core/management.py describes what a module
provides."""
