"""What the contact page shows beneath the contact: its consent history and latest events,
both read-only."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyPermissions
from crm.models import ConsentRecord, Contact, Event

EVENTS_SHOWN = 20


class ConsentRecordInline(ReadOnlyPermissions, admin.TabularInline[ConsentRecord, Contact]):
    model = ConsentRecord
    verbose_name_plural = _("consent history (append-only ledger)")
    extra = 0
    can_delete = False
    fields = (
        "occurred_at",
        "channel",
        "purpose",
        "status",
        "source",
        "legal_basis",
        "text_version",
        "ip_address",
    )
    readonly_fields = fields
    ordering = ("-occurred_at", "-id")
    show_change_link = True


class _LatestEventsFormSet(BaseInlineFormSet[Event, Contact, forms.ModelForm[Event]]):
    """Only the latest events of the contact; the full list is one link away."""

    def get_queryset(self) -> QuerySet[Event]:
        if not hasattr(self, "_latest_events"):
            self._latest_events = (
                super().get_queryset().order_by("-occurred_at", "-id")[:EVENTS_SHOWN]
            )
        return self._latest_events


class LatestEventInline(ReadOnlyPermissions, admin.TabularInline[Event, Contact]):
    model = Event
    formset = _LatestEventsFormSet
    verbose_name_plural = _("latest events")
    extra = 0
    can_delete = False
    fields = ("occurred_at", "type", "value", "currency", "source", "properties")
    readonly_fields = fields
    show_change_link = True
