"""A/B testing: the test horizon, share, winner metric and confidence, default variant and
attribution on Campaign; ABDecision (marketers' view permission: config/marketers.py)."""

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from decimal import Decimal
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0003_dispatch_throttle_and_handover"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="attribution",
            field=models.CharField(
                choices=[
                    ("last_touch", "Last touch across campaigns"),
                    ("any_touch", "Any touch within the window"),
                ],
                default="last_touch",
                help_text="last_touch: a goal event counts for the latest message the contact got before it, across campaigns. any_touch: for every message of this campaign within the window.",
                max_length=12,
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="default_variant",
            field=models.ForeignKey(
                blank=True,
                help_text="Sent to the rest when the test is inconclusive; variant A when empty.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="campaigns.variant",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="test_horizon_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When the test is evaluated, declared before it starts, e.g. 2026-03-12 10:00 (leave the attribution window after the last send).",
                null=True,
                verbose_name="test horizon",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="test_sample_per_variant",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Or: evaluate once every group has this many recipients and the attribution window has passed since the last test message, e.g. 3900 (use the planner).",
                null=True,
                verbose_name="sample per variant",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="test_share",
            field=models.PositiveSmallIntegerField(
                default=100,
                help_text="Percent of the audience in the test, e.g. 20: the rest gets the winning variant at the horizon. 100 = everyone is in the test, no winner send.",
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(100),
                ],
                verbose_name="test share %",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="winner_confidence",
            field=models.DecimalField(
                decimal_places=3,
                default=Decimal("0.950"),
                help_text="A variant wins when its Holm-corrected p-value is below 1 - this, e.g. 0.95.",
                max_digits=4,
                validators=[
                    django.core.validators.MinValueValidator(Decimal("0.5")),
                    django.core.validators.MaxValueValidator(Decimal("0.999")),
                ],
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="winner_metric",
            field=models.CharField(
                choices=[
                    ("conversion", "Conversion rate (goal event)"),
                    ("click", "Unique click rate"),
                ],
                default="conversion",
                help_text="What the winner is chosen on, e.g. conversion.",
                max_length=12,
            ),
        ),
        migrations.CreateModel(
            name="ABDecision",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("decided_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("winner", "A variant won"),
                            ("default", "Inconclusive: default variant"),
                        ],
                        max_length=10,
                    ),
                ),
                (
                    "reason",
                    models.TextField(
                        help_text="e.g. B beats holdout: p = 0.0004 (Holm), +1.2 points."
                    ),
                ),
                (
                    "numbers",
                    models.JSONField(
                        blank=True,
                        default=dict,
                        help_text="The report at decision time (campaigns report --json).",
                    ),
                ),
                (
                    "remainder_sent_at",
                    models.DateTimeField(
                        blank=True,
                        help_text="When the rest of the audience was launched.",
                        null=True,
                    ),
                ),
                ("remainder_deliveries", models.PositiveIntegerField(default=0)),
                (
                    "campaign",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="ab_decision",
                        to="campaigns.campaign",
                    ),
                ),
                (
                    "variant",
                    models.ForeignKey(
                        blank=True,
                        help_text="The variant sent to the rest of the audience.",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="campaigns.variant",
                    ),
                ),
            ],
            options={
                "verbose_name": "A/B decision",
            },
        ),
    ]
