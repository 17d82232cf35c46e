"""The winner decision of a campaign's A/B test."""

from __future__ import annotations

from django.db import models
from django.utils import timezone as dj_timezone

from campaigns.models.campaigns import Campaign, Variant


class ABDecision(models.Model):
    """The automatic winner decision of a campaign's A/B test, taken once at its declared
    horizon, with the numbers behind it (the report as it was then)."""

    class Outcome(models.TextChoices):
        WINNER = "winner", "A variant won"
        DEFAULT = "default", "Inconclusive: default variant"

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="ab_decision")
    decided_at = models.DateTimeField(default=dj_timezone.now)
    variant = models.ForeignKey(
        Variant,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The variant sent to the rest of the audience.",
    )
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.TextField(help_text="e.g. B beats holdout: p = 0.0004 (Holm), +1.2 points.")
    numbers = models.JSONField(
        default=dict, blank=True, help_text="The report at decision time (campaigns report --json)."
    )
    remainder_sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When the rest of the audience was launched."
    )
    remainder_deliveries = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "A/B decision"

    def __str__(self) -> str:
        return f"{self.campaign}: {self.outcome}"
