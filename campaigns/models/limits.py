"""How much may be sent: frequency caps per contact and the shared throughput bucket."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from django.utils import timezone as dj_timezone

from crm.models import Channel


class FrequencyCap(models.Model):
    """At most `max_messages` marketing messages on `channel` per `days` local days, across
    campaigns. Transactional and priority-10 messages are exempt."""

    channel = models.CharField(max_length=10, choices=Channel.choices)
    max_messages = models.PositiveSmallIntegerField(help_text="e.g. 3")
    days = models.PositiveSmallIntegerField(
        help_text="Counted in the contact's local calendar days, e.g. 7."
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["channel", "days"], name="campaigns_cap_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.channel}: at most {self.max_messages} in {self.days} days"


class ThrottleBucket(models.Model):
    """The token bucket behind a channel's messages-per-second limit on the embedded default
    (SQLite or PostgreSQL without Redis): every worker takes its tokens from this one row, so
    the limit holds across workers and machines. See campaigns/services/throttle.py."""

    channel = models.CharField(max_length=10, primary_key=True, choices=Channel.choices)
    tokens = models.FloatField(default=0, help_text="Tokens left at updated_at, e.g. 3.5.")
    updated_at = models.DateTimeField(default=dj_timezone.now)

    def __str__(self) -> str:
        return f"{self.channel}: {self.tokens:.1f} tokens"
