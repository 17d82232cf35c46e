"""Deliveries and responses in admin, read-only: what the sends and the providers wrote.

Addresses and webhook fields could have been written by a contact or a provider: they go
through format_html or the admin's own escaping."""

from __future__ import annotations

import json

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from campaigns.models import Delivery, Response
from core.admin import ReadOnlyModelAdmin
from crm.models import Contact


def _contact_link(contact: Contact | None) -> SafeString | str:
    if contact is None:
        return "—"
    return format_html(
        '<a href="{}">{}</a>', reverse("admin:crm_contact_change", args=[contact.pk]), contact
    )


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyModelAdmin[Delivery]):
    list_display = (
        "id",
        "campaign",
        "contact_link",
        "channel",
        "status",
        "reason",
        "attempts",
        "sent_at",
    )
    list_filter = ("status", "reason", "channel", "campaign")
    list_select_related = ("campaign", "contact")
    raw_id_fields = ("contact",)
    search_fields = ("=id", "to_address", "provider_message_id")
    show_full_result_count = False
    ordering = ("-id",)

    @admin.display(description=_("contact"))
    def contact_link(self, obj: Delivery) -> SafeString | str:
        return _contact_link(obj.contact)


@admin.register(Response)
class ResponseAdmin(ReadOnlyModelAdmin[Response]):
    list_display = ("id", "kind", "provider", "campaign", "delivery_id", "short_url", "occurred_at")
    list_filter = ("kind", "provider", "campaign")
    list_select_related = ("campaign",)
    raw_id_fields = ("contact", "delivery")
    search_fields = ("=delivery__id", "provider_event_id")
    show_full_result_count = False
    ordering = ("-id",)
    exclude = ("payload",)
    readonly_fields = ("payload_pretty",)

    class Media:
        css = {"all": ("campaigns/admin.css",)}

    @admin.display(description=_("URL"))
    def short_url(self, obj: Response) -> str:
        # Returned as a plain str: the admin escapes it like every other value.
        return obj.url[:80] + ("…" if len(obj.url) > 80 else "")

    @admin.display(description=_("provider event"))
    def payload_pretty(self, obj: Response) -> SafeString:
        text = json.dumps(obj.payload, indent=2, ensure_ascii=False, sort_keys=True)
        return format_html('<pre class="payload-pretty">{}</pre>', text)
