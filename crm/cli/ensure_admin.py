"""Create the first admin login if there is none, and say how to log in.

The password comes from ADMIN_PASSWORD, or is generated once and kept in var/admin-password.txt
(readable by the owner only) so that `make run` can print it again on every start."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

HELP = "Create the first superuser (ADMIN_USERNAME / ADMIN_PASSWORD) and print the login."


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    User = get_user_model()
    username = settings.ADMIN_USERNAME
    password_file = settings.VAR_DIR / "admin-password.txt"
    url = f"{settings.PUBLIC_BASE_URL}/admin/"
    if not User.objects.filter(is_superuser=True).exists():
        password = settings.ADMIN_PASSWORD or secrets.token_urlsafe(12)
        User.objects.create_superuser(
            username=username, email=settings.ADMIN_EMAIL, password=password
        )
        if not settings.ADMIN_PASSWORD:
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        command.stdout.write(command.style.SUCCESS(f"Created the admin login {username!r}."))
    if settings.ADMIN_PASSWORD:
        shown = "(the ADMIN_PASSWORD you set)"
    elif password_file.exists():
        shown = password_file.read_text().strip()
    else:
        shown = "(set before; `python manage.py changepassword` to reset it)"
    command.stdout.write(f"Admin: {url}  user: {username}  password: {shown}")
