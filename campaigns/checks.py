"""System checks for the provider webhooks: without their secrets anyone could post a fake
bounce (and so suppress any address) or a fake STOP."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


def webhook_secrets(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    problems: list[checks.CheckMessage] = []
    if settings.EMAIL_ESP and not settings.ANYMAIL.get("WEBHOOK_SECRET"):
        problems.append(
            checks.Warning(
                "EMAIL_ESP is set but ANYMAIL_WEBHOOK_SECRET (or WEBHOOK_SECRET) is not: the "
                "tracking webhooks at /webhooks/anymail/ accept unauthenticated posts.",
                hint="Set ANYMAIL_WEBHOOK_SECRET=user:long-random-password and put the same "
                "credentials in the ESP's webhook URL.",
                id="campaigns.W001",
            )
        )
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
    checks.register(webhook_secrets, checks.Tags.security, deploy=True)
