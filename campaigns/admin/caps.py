"""Frequency caps in admin."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from campaigns.models import FrequencyCap


@admin.register(FrequencyCap)
class FrequencyCapAdmin(admin.ModelAdmin[FrequencyCap]):
    """Caps change what every campaign may send: superusers edit them, marketers read."""

    list_display = ("channel", "max_messages", "days", "is_active")
    list_filter = ("channel", "is_active")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)
