"""System checks for the provider webhooks: without their secrets anyone could post a fake
bounce (and so suppress any address) or a fake STOP. They run with every `manage.py check`
(and so before runserver, migrate and every management command), not only with --deploy:
the webhook views refuse every request until these are fixed, which would otherwise go
unnoticed until bounces stopped being obeyed."""

from __future__ import annotations

import importlib.util
from typing import Any

from django.conf import settings
from django.core import checks

from campaigns.channels.provider_events import anymail_tracking_esps, anymail_tracking_view_problem


def _backend_exists(esp: str) -> bool:
    try:
        return importlib.util.find_spec(f"anymail.backends.{esp}") is not None
    except (ImportError, ValueError):
        return False


def _email_webhook_problems() -> list[checks.CheckMessage]:
    esp = settings.EMAIL_ESP
    if not esp:
        return []  # the embedded default: mail goes to files and no tracking URL is mounted
    esps = anymail_tracking_esps()
    if esp not in esps or not _backend_exists(esp):
        return [
            checks.Error(
                f"EMAIL_ESP={esp!r} names no anymail ESP with a tracking webhook.",
                hint=f"Use one of: {', '.join(sorted(esps))}.",
                id="campaigns.E003",
            )
        ]
    if not settings.ANYMAIL.get("WEBHOOK_SECRET"):
        return [
            checks.Error(
                "EMAIL_ESP is set but ANYMAIL_WEBHOOK_SECRET (or WEBHOOK_SECRET) is not: the "
                f"tracking webhook /webhooks/anymail/{esp}/tracking/ refuses every request, so "
                "bounces, complaints and unsubscribes reported by the ESP are lost.",
                hint="Set ANYMAIL_WEBHOOK_SECRET=user:long-random-password and put the same "
                "credentials in the ESP's webhook URL.",
                id="campaigns.E002",
            )
        ]
    problem = anymail_tracking_view_problem(esp)
    if problem:
        return [
            checks.Error(
                f"anymail's {esp} tracking webhook is not configured: {problem}",
                id="campaigns.E004",
            )
        ]
    return []


def webhook_secrets(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    problems = _email_webhook_problems()
    if settings.SMS_BACKEND == "twilio" and not settings.TWILIO_AUTH_TOKEN:
        problems.append(
            checks.Error(
                "SMS_BACKEND=twilio without TWILIO_AUTH_TOKEN: Twilio webhooks cannot be "
                "verified and are all refused.",
                id="campaigns.E001",
            )
        )
    return problems


def register() -> None:
    checks.register(webhook_secrets, checks.Tags.security)
