"""To whom and when: a campaign, its audience, schedule, sender, rules and A/B design, and
the variants it sends."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone as dj_timezone

from campaigns.models.templates import MessageTemplate
from crm.models import MARKETING, Channel

# The power the sample per variant is planned for (the planner's default).
PLANNED_POWER = 0.8


class Campaign(models.Model):
    class Kind(models.TextChoices):
        BROADCAST = "broadcast", "Broadcast at a scheduled time"
        TRIGGERED = "triggered", "Triggered by rules"
        RECURRING = "recurring", "Recurring on a schedule"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    name = models.CharField(max_length=200, help_text="e.g. Still thinking it over?")
    slug = models.SlugField(max_length=100, unique=True, help_text="e.g. browse-abandonment")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.BROADCAST)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    audience = models.ForeignKey(
        "segments.Segment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="campaigns",
        verbose_name="audience segment",
        help_text=(
            "Who receives a broadcast or recurring send (or an audience list instead); "
            "optional for triggered ones."
        ),
    )
    audience_list = models.ForeignKey(
        "segments.StaticList",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="campaigns",
        verbose_name="audience list",
        help_text=(
            "A static list to send to instead of a segment, e.g. VIP callback; a campaign has "
            "one audience, a segment or a list."
        ),
    )
    exclusion_segments = models.ManyToManyField(
        "segments.Segment",
        blank=True,
        related_name="excluded_from_campaigns",
        help_text="Members of these segments never receive this campaign.",
    )
    purpose = models.CharField(
        max_length=64,
        default=MARKETING,
        help_text="The consent purpose a recipient must have granted, e.g. marketing.",
    )
    is_transactional = models.BooleanField(
        "transactional",
        default=False,
        help_text="Receipts and the like: exempt from frequency caps. Never for marketing.",
    )
    priority = models.PositiveSmallIntegerField(
        default=5,
        validators=[MaxValueValidator(10)],
        help_text="0 (lowest) to 10; 10 bypasses frequency caps.",
    )
    from_email = models.CharField(
        "from",
        max_length=254,
        blank=True,
        help_text="e.g. Demo Shop <hello@shop.example>; DEFAULT_FROM_EMAIL when empty.",
    )
    reply_to = models.CharField("reply-to", max_length=254, blank=True)
    sms_from = models.CharField(
        "SMS sender",
        max_length=32,
        blank=True,
        help_text="A number in E.164 or an alphanumeric sender ID; settings when empty.",
    )
    messaging_service_sid = models.CharField(
        "Twilio Messaging Service SID", max_length=64, blank=True, help_text="e.g. MG0123..."
    )
    scheduled_at = models.DateTimeField(
        null=True, blank=True, help_text="When a broadcast starts (UTC in storage)."
    )
    send_at_local_time = models.TimeField(
        "send at local time",
        null=True,
        blank=True,
        help_text="e.g. 10:00: each recipient gets it at this time in their own time zone, "
        "on or after scheduled_at.",
    )
    crontab = models.ForeignKey(
        "django_celery_beat.CrontabSchedule",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text="For recurring campaigns: when each occurrence starts.",
    )
    last_launched_occurrence = models.CharField(
        max_length=40,
        blank=True,
        default="",
        editable=False,
        help_text="For recurring campaigns: the latest slot whose launch finished. A slot "
        "whose launch was interrupted is launched again (idempotently) until it finishes.",
    )
    holdout_percent = models.DecimalField(
        "holdout %",
        max_digits=5,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(50)],
        help_text="Share of the audience that receives nothing and is measured, e.g. 10.",
    )
    track_opens_clicks = models.BooleanField(
        "track opens and clicks",
        default=True,
        help_text="Rewrite the links of this campaign's emails through /t/c/ and add an open "
        "pixel (docs/tracking.md). Turn off for senders that must not track; ESP-reported "
        "opens and clicks then count instead.",
    )
    utm_parameters = models.BooleanField(
        "UTM parameters",
        default=True,
        help_text="Append utm_source, utm_medium, utm_campaign (the slug) and utm_content (the "
        "variant) to link targets, e.g. ?utm_source=cadence&utm_medium=email; a link's own "
        "utm_* values are kept.",
    )
    defer_when_capped = models.BooleanField(
        default=True,
        help_text="A message over the frequency cap waits for the next free slot instead of "
        "being skipped.",
    )
    goal_event = models.CharField(
        max_length=100,
        default="order_completed",
        help_text="The event that counts as a conversion, e.g. order_completed.",
    )
    attribution_window_days = models.PositiveSmallIntegerField(
        default=5, help_text="A goal event this many days after a delivery counts for it."
    )

    class Attribution(models.TextChoices):
        LAST_TOUCH = "last_touch", "Last touch across campaigns"
        ANY_TOUCH = "any_touch", "Any touch within the window"

    class WinnerMetric(models.TextChoices):
        CONVERSION = "conversion", "Conversion rate (goal event)"
        CLICK = "click", "Unique click rate"

    # A/B testing (docs/ab-testing.md): a fixed-horizon design declared up front.
    attribution = models.CharField(
        max_length=12,
        choices=Attribution.choices,
        default=Attribution.LAST_TOUCH,
        help_text="last_touch: a goal event counts for the latest message the contact got "
        "before it, across campaigns. any_touch: for every message of this campaign within "
        "the window.",
    )
    test_share = models.PositiveSmallIntegerField(
        "test share %",
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Percent of the audience in the test, e.g. 20: the rest gets the winning "
        "variant at the horizon. 100 = everyone is in the test, no winner send.",
    )
    test_horizon_at = models.DateTimeField(
        "test horizon",
        null=True,
        blank=True,
        help_text="When the test is evaluated, declared before it starts, e.g. 2026-03-12 "
        "10:00 (leave the attribution window after the last send).",
    )
    test_sample_per_variant = models.PositiveIntegerField(
        "sample per variant",
        null=True,
        blank=True,
        help_text="Or: evaluate once every group has this many recipients and the attribution "
        "window has passed since the last test message, e.g. 3900 (use the planner).",
    )
    test_baseline_rate = models.DecimalField(
        "planned baseline rate %",
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("99.99"))],
        help_text="The control's rate of the winner metric today, e.g. 5 for 5 %: with the "
        "minimum effect, the sample per variant is checked against the planner.",
    )
    test_minimum_effect = models.DecimalField(
        "planned minimum effect, points",
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="The smallest difference the test must detect, in rate points, e.g. 1 "
        "(5 % to 6 %).",
    )
    winner_metric = models.CharField(
        max_length=12,
        choices=WinnerMetric.choices,
        default=WinnerMetric.CONVERSION,
        help_text="What the winner is chosen on, e.g. conversion.",
    )
    winner_confidence = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.950"),
        validators=[MinValueValidator(Decimal("0.5")), MaxValueValidator(Decimal("0.999"))],
        help_text="A variant wins when its Holm-corrected p-value is below 1 - this, e.g. 0.95.",
    )
    default_variant = models.ForeignKey(
        "Variant",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Sent to the rest when the test is inconclusive; variant A when empty.",
    )
    created_at = models.DateTimeField(default=dj_timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = self._audience_errors()
        chosen = self.default_variant if self.default_variant_id is not None else None
        if chosen is not None and (self.pk is None or chosen.campaign_id != self.pk):
            errors["default_variant"] = "Choose one of this campaign's own variants."
        if self.test_share < 100:
            if self.kind != self.Kind.BROADCAST:
                errors["test_share"] = "A test share below 100 % works for broadcasts only."
            elif self.test_horizon_at is None and not self.test_sample_per_variant:
                errors["test_horizon_at"] = (
                    "Declare the test horizon (or a sample per variant) when testing on a "
                    "share of the audience: the rest is sent the winner at the horizon."
                )
        errors.update(self._horizon_errors())
        errors.update(self._sample_errors())
        if errors:
            raise ValidationError(errors)

    def _audience_errors(self) -> dict[str, str]:
        """One audience, so a marketer never wonders which of two a send went to. A draft may
        still lack one; a triggered campaign goes to whoever its rule picks and needs none."""
        if self.audience_id is not None and self.audience_list_id is not None:
            return {
                "audience_list": (
                    "Choose a segment or a static list as the audience, not both: the campaign "
                    "is sent to one of them."
                )
            }
        if (
            self.audience_id is None
            and self.audience_list_id is None
            and self.kind in (self.Kind.BROADCAST, self.Kind.RECURRING)
            and self.status != self.Status.DRAFT
        ):
            return {
                "audience": (
                    f"A {self.kind} campaign needs an audience before it leaves draft: choose "
                    "a segment or a static list."
                )
            }
        return {}

    def _horizon_errors(self) -> dict[str, str]:
        """A horizon before the attribution window has passed after the first send would
        decide before the conversions it counts could happen."""
        if self.test_horizon_at is None:
            return {}
        first_send = self.started_at or self.scheduled_at or dj_timezone.now()
        last_send = first_send
        if self.send_at_local_time is not None:
            # Each recipient gets it at that time in their own zone: up to a day later.
            last_send += dt.timedelta(days=1)
        earliest = last_send + dt.timedelta(days=self.attribution_window_days)
        if self.test_horizon_at >= earliest:
            return {}
        days = self.attribution_window_days
        return {
            "test_horizon_at": (
                f"The horizon must leave the attribution window of {days} "
                f"day{'s' if days != 1 else ''} after the "
                f"{'last' if self.send_at_local_time else 'first'} send "
                f"({last_send.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC), so conversions can "
                f"arrive before the test is decided: "
                f"{earliest.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC or later."
            )
        }

    def comparisons(self) -> int:
        """Comparisons with the control among the saved variants (at least 1): each variant
        against the holdout for conversions with a holdout, else each but A against A."""
        variants = self.variants.count() if self.pk is not None else 0
        with_holdout = (
            self.holdout_percent > 0 and self.winner_metric == self.WinnerMetric.CONVERSION
        )
        return max(1, variants if with_holdout else variants - 1)

    def _sample_errors(self) -> dict[str, str]:
        """A sample per variant below the planner's figure for the planned effect (80 % power,
        1 - winner_confidence shared among the comparisons, Bonferroni) decides on noise."""
        from campaigns.abtest import planner

        sample = self.test_sample_per_variant
        baseline, effect = self.test_baseline_rate, self.test_minimum_effect
        if baseline is None and effect is None:
            if sample:
                return {
                    "test_baseline_rate": (
                        "Give the baseline rate and the minimum effect you plan to detect: a "
                        "sample per variant is checked against the planner's figure for them."
                    )
                }
            return {}
        if baseline is None or effect is None:
            missing = "test_baseline_rate" if baseline is None else "test_minimum_effect"
            return {missing: "Give both the planned baseline rate and the minimum effect."}
        comparisons = self.comparisons()
        alpha = (1 - float(self.winner_confidence)) / comparisons
        try:
            plan = planner.sample_size(
                baseline=float(baseline) / 100,
                mde=float(effect) / 100,
                power=PLANNED_POWER,
                alpha=alpha,
            )
        except planner.PlannerError as exc:
            return {"test_minimum_effect": str(exc)}
        if not sample or sample >= plan.per_group:
            return {}
        return {
            "test_sample_per_variant": (
                f"The planner needs {plan.per_group} recipients per group to detect "
                f"{float(effect):+g} points on a baseline of {float(baseline):g} % "
                f"({PLANNED_POWER * 100:.0f} % power, two-sided alpha {alpha:.3g} over "
                f"{comparisons} comparison{'s' if comparisons != 1 else ''}); {sample} would "
                "decide on noise."
            )
        }


class Variant(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=50, default="A", help_text="e.g. A, B, short subject")
    template = models.ForeignKey(MessageTemplate, on_delete=models.PROTECT, related_name="+")
    weight = models.PositiveIntegerField(
        default=1, help_text="Relative share of the non-holdout audience, e.g. 1 and 1 for 50/50."
    )

    class Meta:
        ordering = ("campaign", "name")
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["campaign", "name"], name="campaigns_variant_name"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} / {self.name}"
