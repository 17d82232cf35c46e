"""Admin for events: listed and filtered, never deleted."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from crm.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin[Event]):
    list_display = ("occurred_at", "type", "contact", "value", "currency", "source")
    list_filter = ("type", "source")
    date_hierarchy = "occurred_at"
    raw_id_fields = ("contact",)
    list_select_related = ("contact",)
    ordering = ("-occurred_at", "-id")
    show_full_result_count = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Events are protected by their contact and feed rollups; nothing deletes one here.
        return False
