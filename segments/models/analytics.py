"""Per-contact analytics that segment conditions can use: RFM scores and groups, lifecycle
stages (with their history), K-means clusters and BG/NBD purchase predictions.

Everything here is derived from crm's contacts and events and recomputed in bulk by
segments.analytics; losing a row loses nothing that the next run does not rebuild, which is
why these rows follow their contact on delete (CASCADE) while crm's own records PROTECT.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypedDict

from django.db import models
from django.utils import timezone as dj_timezone

from crm.models import Contact

__all__ = [
    "ClusterDescription",
    "ClusteringRun",
    "ContactCluster",
    "ContactLifecycle",
    "ContactPrediction",
    "ContactRFM",
    "LifecycleChange",
    "LifecycleStage",
    "PredictionFit",
    "PredictionParams",
    "RFMGroup",
]


class RFMGroup(models.TextChoices):
    CHAMPIONS = "champions", "Champions"
    LOYAL = "loyal", "Loyal"
    POTENTIAL_LOYALIST = "potential_loyalist", "Potential loyalist"
    NEW_CUSTOMERS = "new_customers", "New customers"
    PROMISING = "promising", "Promising"
    NEED_ATTENTION = "need_attention", "Need attention"
    ABOUT_TO_SLEEP = "about_to_sleep", "About to sleep"
    AT_RISK = "at_risk", "At risk"
    CANT_LOSE_THEM = "cant_lose_them", "Can't lose them"
    HIBERNATING = "hibernating", "Hibernating"
    LOST = "lost", "Lost"


class ContactRFM(models.Model):
    """Recency, frequency and monetary quintile scores of one contact over a period.
    Contacts with no purchase in the period have no row (they are not scored)."""

    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, related_name="rfm")
    recency_score = models.PositiveSmallIntegerField(
        "R score", help_text="1 to 5; 5 is the most recent fifth of buyers, e.g. 4."
    )
    frequency_score = models.PositiveSmallIntegerField(
        "F score", help_text="1 to 5; 5 is the fifth who bought most often, e.g. 2."
    )
    monetary_score = models.PositiveSmallIntegerField(
        "M score", help_text="1 to 5; 5 is the fifth who spent most, e.g. 5."
    )
    group = models.CharField(
        "RFM group",
        max_length=32,
        choices=RFMGroup.choices,
        db_index=True,
        help_text="Named group from the R and F+M scores (docs/segments.md), e.g. champions.",
    )
    recency_days = models.PositiveIntegerField(
        "days since last purchase", help_text="Whole days at computation time, e.g. 12."
    )
    frequency = models.PositiveIntegerField(
        "purchases", help_text="order_completed events in the period, e.g. 3."
    )
    monetary = models.DecimalField(
        "spend",
        max_digits=16,
        decimal_places=2,
        help_text="Sum of order values in the period (currencies are not converted), e.g. 129.90",
    )
    period_days = models.PositiveIntegerField(
        "period (days)", help_text="The window the scores cover, e.g. 365."
    )
    computed_at = models.DateTimeField("computed at", db_index=True)

    class Meta:
        verbose_name = "contact RFM score"
        indexes: ClassVar[list[Any]] = [
            models.Index(
                fields=["recency_score", "frequency_score", "monetary_score"],
                name="segments_rfm_scores_idx",
            ),
        ]
        constraints: ClassVar[list[Any]] = [
            models.CheckConstraint(
                condition=models.Q(recency_score__gte=1, recency_score__lte=5)
                & models.Q(frequency_score__gte=1, frequency_score__lte=5)
                & models.Q(monetary_score__gte=1, monetary_score__lte=5),
                name="segments_rfm_scores_1_to_5",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"R{self.recency_score}F{self.frequency_score}M{self.monetary_score} "
            f"({self.get_group_display()})"
        )


class LifecycleStage(models.TextChoices):
    NEW = "new", "New"
    ACTIVE = "active", "Active"
    DORMANT = "dormant", "Dormant"
    CHURNED = "churned", "Churned"
    REACTIVATED = "reactivated", "Reactivated"


class ContactLifecycle(models.Model):
    """The current lifecycle stage of a contact, from its activity (events) alone; editing
    a contact is not activity (docs/segments.md has the thresholds)."""

    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, related_name="lifecycle")
    stage = models.CharField(
        max_length=16, choices=LifecycleStage.choices, db_index=True, help_text="e.g. dormant."
    )
    since = models.DateTimeField(help_text="When the contact was first seen in this stage.")
    updated_at = models.DateTimeField("updated at", default=dj_timezone.now)

    class Meta:
        verbose_name = "contact lifecycle stage"

    def __str__(self) -> str:
        return f"{self.get_stage_display()} since {self.since:%Y-%m-%d}"


class LifecycleChange(models.Model):
    """One stage change; from_stage is empty for a contact's first stage."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="lifecycle_changes")
    from_stage = models.CharField(
        "from", max_length=16, choices=LifecycleStage.choices, blank=True, help_text="e.g. active."
    )
    to_stage = models.CharField(
        "to", max_length=16, choices=LifecycleStage.choices, help_text="e.g. dormant."
    )
    changed_at = models.DateTimeField("changed at", default=dj_timezone.now)

    class Meta:
        verbose_name = "lifecycle change"
        indexes: ClassVar[list[Any]] = [
            models.Index(fields=["contact", "-changed_at"], name="segments_lcchange_contact_idx"),
            models.Index(fields=["to_stage", "-changed_at"], name="segments_lcchange_to_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.from_stage or '-'} → {self.to_stage} at {self.changed_at:%Y-%m-%d}"


class ClusterDescription(TypedDict):
    """One cluster of a run, as stored in ClusteringRun.descriptions."""

    cluster: int  # 0-based index
    label: str  # short, e.g. "Frequent big spenders"
    description: str  # plain words, e.g. "buy 3.2 times as often as average, ..."
    size: int
    share: float  # of the contacts clustered, 0..1
    means: dict[str, float]  # raw feature means of the cluster
    segment_slug: str | None  # the segment saved for it, when segments exist


class ClusteringRun(models.Model):
    """One K-means run over standardised contact features."""

    k = models.PositiveSmallIntegerField("clusters (k)", help_text="e.g. 4.")
    features = models.JSONField(
        default=list,
        help_text='Feature names in order, e.g. ["recency_days", "frequency", "monetary"].',
    )
    silhouette = models.FloatField(
        null=True, blank=True, help_text="Mean silhouette (-1..1, higher is better), e.g. 0.41."
    )
    seed = models.IntegerField(help_text="random_state of K-means; the same seed, the same run.")
    period_days = models.PositiveIntegerField(
        "period (days)", default=365, help_text="Events considered, e.g. 365."
    )
    contacts = models.PositiveIntegerField("contacts clustered", default=0)
    descriptions = models.JSONField(
        default=list,
        blank=True,
        help_text='One entry per cluster, e.g. [{"cluster": 0, "label": "Loyal big spenders", '
        '"description": "buy 3.2 times as often as average, ...", "size": 120, ...}].',
    )
    created_at = models.DateTimeField(default=dj_timezone.now, db_index=True)

    class Meta:
        verbose_name = "clustering run"
        get_latest_by = ("created_at", "id")

    def __str__(self) -> str:
        return f"k={self.k} run #{self.pk} ({self.created_at:%Y-%m-%d %H:%M})"


class ContactCluster(models.Model):
    run = models.ForeignKey(ClusteringRun, on_delete=models.CASCADE, related_name="assignments")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="clusters")
    cluster = models.PositiveSmallIntegerField(help_text="0-based cluster index, e.g. 2.")
    label = models.CharField(max_length=200, blank=True, help_text="e.g. Frequent big spenders")

    class Meta:
        verbose_name = "contact cluster"
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["run", "contact"], name="segments_cluster_unique"),
        ]
        indexes: ClassVar[list[Any]] = [
            models.Index(fields=["run", "cluster"], name="segments_cluster_run_idx"),
        ]

    def __str__(self) -> str:
        return f"cluster {self.cluster} of run #{self.run_id}"


class PredictionParams(TypedDict):
    """ContactPrediction.params: the BG/NBD fit the prediction came from."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int
    unit: str  # "day" or "week": the time unit of alpha
    calibration_end: str  # ISO date


class ContactPrediction(models.Model):
    """BG/NBD predictions for a contact who has bought at least once."""

    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, related_name="prediction")
    p_alive = models.FloatField(
        "P(alive)", db_index=True, help_text="Probability the customer is still active, e.g. 0.82."
    )
    expected_purchases = models.FloatField(
        "expected purchases",
        db_index=True,
        help_text="Expected purchases (distinct days) in the next horizon_days, e.g. 1.3.",
    )
    horizon_days = models.PositiveIntegerField("horizon (days)", help_text="e.g. 30.")
    params = models.JSONField(
        default=dict,
        help_text='The fit used, e.g. {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.43, '
        '"unit": "week", "calibration_end": "2026-03-01", ...}.',
    )
    computed_at = models.DateTimeField("computed at", db_index=True)

    class Meta:
        verbose_name = "contact purchase prediction"

    def __str__(self) -> str:
        return f"P(alive)={self.p_alive:.2f}, {self.expected_purchases:.2f} in {self.horizon_days}d"


class PredictionFit(models.Model):
    """One attempt to fit BG/NBD (the daily refresh or `segments fit-clv`): what came of it
    and, when nothing was stored, why. Admin lists these as the history of the predictions."""

    class Status(models.TextChoices):
        FITTED = "fitted", "Fitted"
        NOT_FITTED = "not_fitted", "Not fitted"  # the reason says why
        FAILED = "failed", "Failed"  # an error; the reason holds it

    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    reason = models.TextField(
        blank=True,
        help_text="Why nothing was stored, e.g. only 3 repeat buyers (need 10). Empty when fitted.",
    )
    calibration_end = models.DateField(
        "calibration end", help_text="Purchases up to and including this UTC date, e.g. 2026-03-31."
    )
    unit = models.CharField(max_length=8, help_text="Time unit of alpha: day or week, e.g. week.")
    customers = models.PositiveIntegerField(
        default=0, help_text="Contacts with a purchase by the calibration end, e.g. 38."
    )
    repeat_buyers = models.PositiveIntegerField(
        "repeat buyers", default=0, help_text="Customers who bought on a second day, e.g. 24."
    )
    params = models.JSONField(
        default=dict,
        blank=True,
        help_text='The fit when there is one, e.g. {"r": 0.24, "alpha": 4.4, "a": 0.79, '
        '"b": 2.43, "log_likelihood": -9582.4, "customers": 2357, "unit": "week", ...}; '
        "{} otherwise.",
    )
    predictions = models.PositiveIntegerField(
        "predictions stored", default=0, help_text="ContactPrediction rows written, e.g. 2357."
    )
    created_at = models.DateTimeField(default=dj_timezone.now, db_index=True)

    class Meta:
        verbose_name = "purchase prediction fit"
        get_latest_by = ("created_at", "id")

    def __str__(self) -> str:
        return f"{self.get_status_display()} on {self.calibration_end} ({self.created_at:%Y-%m-%d})"
