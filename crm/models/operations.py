"""Operational records: CSV import runs and API keys."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone as dj_timezone


class ImportRun(models.Model):
    """One CSV import, from the command line or an admin upload, with its progress and the
    path of its per-row report."""

    class Kind(models.TextChoices):
        CONTACTS = "contacts", "Contacts"
        EVENTS = "events", "Events"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    filename = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    rows_read = models.PositiveIntegerField(default=0)
    rows_created = models.PositiveIntegerField(default=0)
    rows_updated = models.PositiveIntegerField(default=0)
    rows_unchanged = models.PositiveIntegerField(default=0)
    rows_rejected = models.PositiveIntegerField(default=0)
    consents_refused = models.PositiveIntegerField(
        "consent grants refused",
        default=0,
        help_text="Consent grants in the file that were not recorded because the person had "
        "withdrawn consent themselves or the address is suppressed, e.g. 3; the report names "
        "each row.",
    )
    report_path = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    def __str__(self) -> str:
        return f"{self.kind} import of {self.filename} ({self.status})"


class ApiKey(models.Model):
    """A key for the ingestion API. Only a SHA-256 of the key is stored; the key itself is
    shown once, when it is created."""

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=12, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=dj_timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
