"""Admin for contacts: the list with its consent filters, the edit form, the consent history
and latest events beneath, and the export and erase actions.

Contact names and event properties are attacker-controlled: everything is shown through the
admin's escaping or format_html, never mark_safe. The consent ledger is view-only everywhere;
contacts are erased (GDPR) rather than deleted.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from crm.admin.contact_actions import erase_selected, export_data
from crm.admin.contact_filters import EmailConsentFilter, SmsConsentFilter
from crm.admin.contact_forms import ContactForm
from crm.admin.contact_inlines import ConsentRecordInline, LatestEventInline
from crm.models import Channel, Contact, Event
from crm.selectors import consent_status_subquery


def _contact_events_url(contact: Contact) -> str:
    query = urlencode({"contact__id__exact": contact.pk})
    return f"{reverse('admin:crm_event_changelist')}?{query}"


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin[Contact]):
    form = ContactForm
    list_display = (
        "__str__",
        "email",
        "phone",
        "email_consent",
        "sms_consent",
        "timezone",
        "created_at",
        "is_erased",
    )
    list_filter = (EmailConsentFilter, SmsConsentFilter, "timezone", "created_at", "is_erased")
    search_fields = ("email_key", "phone", "first_name", "last_name", "external_id")
    search_help_text = _("Search by email, phone, first or last name, or external id.")
    readonly_fields = (
        "uuid",
        "created_at",
        "updated_at",
        "last_activity_at",
        "last_purchase_at",
        "events_summary",
        "is_erased",
        "erased_at",
    )
    fieldsets = (
        (None, {"fields": ("first_name", "last_name", "email", "phone", "external_id")}),
        (_("Profile"), {"fields": ("locale", "timezone", "country", "attributes")}),
        (_("Record"), {"fields": readonly_fields}),
    )
    inlines = (ConsentRecordInline, LatestEventInline)
    actions = (export_data, erase_selected)
    ordering = ("-id",)
    # Counting a million rows on every page view is the slow part of a changelist.
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Contact]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                _email_consent=consent_status_subquery(channel=Channel.EMAIL),
                _sms_consent=consent_status_subquery(channel=Channel.SMS),
            )
        )

    @admin.display(description=_("email consent"), ordering="_email_consent")
    def email_consent(self, obj: Contact) -> str:
        return getattr(obj, "_email_consent", None) or "—"

    @admin.display(description=_("SMS consent"), ordering="_sms_consent")
    def sms_consent(self, obj: Contact) -> str:
        return getattr(obj, "_sms_consent", None) or "—"

    @admin.display(description=_("events"))
    def events_summary(self, obj: Contact) -> str:
        if obj.pk is None:
            return "—"
        count = Event.objects.filter(contact=obj).count()
        return format_html(
            '{} — <a href="{}">{}</a>',
            ngettext("%(count)d event", "%(count)d events", count) % {"count": count},
            _contact_events_url(obj),
            _("see them all"),
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The consent ledger protects its contacts; personal data goes by erasure instead.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_erased:
            return False
        return super().has_change_permission(request, obj)

    def has_erase_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("crm.delete_contact")
