"""Admin for the consent ledger and double opt-in requests: view-only, since both are
written by the code paths that gather consent."""

from __future__ import annotations

from django.contrib import admin

from core.admin import ReadOnlyModelAdmin
from crm.models import ConsentRecord, DoubleOptIn


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyModelAdmin[ConsentRecord]):
    """View-only: the ledger is appended to by the code paths that gather consent."""

    list_display = ("occurred_at", "contact", "channel", "purpose", "status", "source")
    list_filter = ("channel", "status", "source", "purpose")
    date_hierarchy = "occurred_at"
    raw_id_fields = ("contact",)
    list_select_related = ("contact",)
    show_full_result_count = False


@admin.register(DoubleOptIn)
class DoubleOptInAdmin(ReadOnlyModelAdmin[DoubleOptIn]):
    list_display = (
        "requested_at",
        "contact",
        "channel",
        "purpose",
        "status",
        "expires_at",
        "confirmed_at",
    )
    list_filter = ("status", "channel", "purpose")
    date_hierarchy = "requested_at"
    raw_id_fields = ("contact",)
    list_select_related = ("contact",)
    ordering = ("-requested_at", "-id")
    show_full_result_count = False
