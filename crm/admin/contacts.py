"""Admin for contacts, the consent ledger, events, suppression, double opt-in and API keys.

Contact names and event properties are attacker-controlled: everything is shown through the
admin's escaping or format_html, never mark_safe. The consent ledger is view-only everywhere;
contacts are erased (GDPR) rather than deleted.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.admin import ReadOnlyModelAdmin, ReadOnlyPermissions
from crm.models import (
    ApiKey,
    Channel,
    ConsentRecord,
    Contact,
    ContactAlias,
    DoubleOptIn,
    Event,
    Suppression,
)
from crm.normalise import (
    address_hash,
    email_key,
    normalise_country,
    normalise_email,
    normalise_locale,
    normalise_name,
    normalise_phone,
    validate_timezone,
)
from crm.selectors import consent_status_subquery
from crm.services.privacy import contact_erase, contact_export

EVENTS_SHOWN = 20
# Actions on a selection: an export is built in memory and an erasure runs in the request,
# so both are bounded; larger jobs belong to `crm export-contact` / `crm erase-contact`.
ACTION_LIMIT = 200


# --- Contacts ---------------------------------------------------------------------------------


class _ConsentFilter(admin.SimpleListFilter):
    """Current marketing consent on one channel, from the ledger's latest entry per contact,
    as one correlated subquery in the changelist's query."""

    channel: str = Channel.EMAIL

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            (ConsentRecord.Status.GRANTED, _("Granted")),
            (ConsentRecord.Status.WITHDRAWN, _("Withdrawn")),
            ("none", _("Never recorded")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value not in {ConsentRecord.Status.GRANTED, ConsentRecord.Status.WITHDRAWN, "none"}:
            return queryset
        alias = f"_filter_{self.channel}_consent"
        aliased: QuerySet[Any] = queryset.alias(
            **{alias: consent_status_subquery(channel=self.channel)}
        )
        lookup = {f"{alias}__isnull": True} if value == "none" else {alias: value}
        filtered: QuerySet[Any] = aliased.filter(**lookup)
        return filtered


class EmailConsentFilter(_ConsentFilter):
    title = _("email marketing consent")
    parameter_name = "email_consent"
    channel = Channel.EMAIL


class SmsConsentFilter(_ConsentFilter):
    title = _("SMS marketing consent")
    parameter_name = "sms_consent"
    channel = Channel.SMS


class ContactForm(forms.ModelForm[Contact]):
    """Staff edits go through the same normalisation as every other way in."""

    class Meta:
        model = Contact
        fields = (
            "first_name",
            "last_name",
            "email",
            "phone",
            "external_id",
            "locale",
            "timezone",
            "country",
            "attributes",
        )

    def _taken(self, **lookup: Any) -> bool:
        return Contact.objects.filter(**lookup).exclude(pk=self.instance.pk).exists()

    def clean_email(self) -> str | None:
        raw = self.cleaned_data.get("email")
        if not raw:
            return None
        value = normalise_email(raw)
        key = email_key(value)
        if (
            self._taken(email_key=key)
            or ContactAlias.objects.filter(kind=ContactAlias.Kind.EMAIL, value=key)
            .exclude(contact_id=self.instance.pk)
            .exists()
        ):
            raise ValidationError(_("Another contact already has this email address."))
        return value

    def clean_phone(self) -> str | None:
        raw = self.cleaned_data.get("phone")
        if not raw:
            return None
        value = normalise_phone(raw)
        if self._taken(phone=value):
            raise ValidationError(_("Another contact already has this phone number."))
        return value

    def clean_external_id(self) -> str | None:
        value = (self.cleaned_data.get("external_id") or "").strip()
        if value and self._taken(external_id=value):
            raise ValidationError(_("Another contact already has this external id."))
        return value or None

    def clean_first_name(self) -> str:
        return normalise_name(self.cleaned_data.get("first_name"))

    def clean_last_name(self) -> str:
        return normalise_name(self.cleaned_data.get("last_name"))

    def clean_timezone(self) -> str:
        return validate_timezone(self.cleaned_data.get("timezone") or "")

    def clean_country(self) -> str:
        return normalise_country(self.cleaned_data.get("country"))

    def clean_locale(self) -> str:
        return normalise_locale(self.cleaned_data.get("locale"))

    def clean_attributes(self) -> Any:
        value = self.cleaned_data.get("attributes")
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValidationError(_('Attributes must be a JSON object, e.g. {"plan": "pro"}.'))
        return value


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
    actions = ("export_data", "erase_selected")
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

    def _over_limit(self, request: HttpRequest, queryset: QuerySet[Contact], verb: str) -> bool:
        if queryset[: ACTION_LIMIT + 1].count() > ACTION_LIMIT:
            self.message_user(
                request,
                _(
                    "Select at most %(limit)d contacts to %(verb)s at once; use the "
                    "crm export-contact or crm erase-contact command for more."
                )
                % {"limit": ACTION_LIMIT, "verb": verb},
                messages.ERROR,
            )
            return True
        return False

    @admin.action(description=_("Export selected contacts' data (JSON)"), permissions=["view"])
    def export_data(self, request: HttpRequest, queryset: QuerySet[Contact]) -> HttpResponse | None:
        if self._over_limit(request, queryset, "export"):
            return None
        contacts = list(queryset.order_by("pk"))
        if len(contacts) == 1:
            contact = contacts[0]
            body = json.dumps(
                contact_export(contact=contact), indent=2, ensure_ascii=False, cls=DjangoJSONEncoder
            )
            response = HttpResponse(body, content_type="application/json; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="{contact.uuid}.json"'
            return response
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for contact in contacts:
                data = contact_export(contact=contact)
                archive.writestr(
                    f"{contact.uuid}.json",
                    json.dumps(data, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder),
                )
        response = HttpResponse(buffer.getvalue(), content_type="application/zip")
        stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="contacts-export-{stamp}.zip"'
        return response

    @admin.action(description=_("Erase selected contacts' personal data…"), permissions=["erase"])
    def erase_selected(
        self, request: HttpRequest, queryset: QuerySet[Contact]
    ) -> TemplateResponse | None:
        if self._over_limit(request, queryset, "erase"):
            return None
        if request.POST.get("post") == "yes":
            erased = 0
            requested_by = f"admin:{request.user.get_username()}"
            for contact in queryset.order_by("pk"):
                contact_erase(contact=contact, requested_by=requested_by)
                erased += 1
            self.message_user(
                request,
                ngettext(
                    "Erased the personal data of %(count)d contact.",
                    "Erased the personal data of %(count)d contacts.",
                    erased,
                )
                % {"count": erased},
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Erase personal data?"),
            "opts": self.model._meta,
            "contacts": list(queryset.order_by("pk")),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/crm/contact/erase_confirmation.html", context)


# --- The consent ledger and events ------------------------------------------------------------


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyModelAdmin[ConsentRecord]):
    """View-only: the ledger is appended to by the code paths that gather consent."""

    list_display = ("occurred_at", "contact", "channel", "purpose", "status", "source")
    list_filter = ("channel", "status", "source", "purpose")
    date_hierarchy = "occurred_at"
    raw_id_fields = ("contact",)
    list_select_related = ("contact",)
    show_full_result_count = False


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


# --- Suppression ------------------------------------------------------------------------------


class SuppressionAddForm(forms.ModelForm[Suppression]):
    address = forms.CharField(
        label=_("Address"),
        max_length=254,
        help_text=_(
            "The email or phone number to suppress, e.g. ada@example.com or +14155550123. "
            "Only its SHA-256 hash is kept."
        ),
    )

    class Meta:
        model = Suppression
        fields = ("channel", "note")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        channel = cleaned.get("channel")
        raw = cleaned.get("address")
        if not channel or not raw:
            return cleaned
        try:
            address = normalise_email(raw) if channel == Channel.EMAIL else normalise_phone(raw)
        except ValidationError as exc:
            self.add_error("address", exc)
            return cleaned
        hashed = address_hash(channel, address)
        if Suppression.objects.filter(channel=channel, address_hash=hashed).exists():
            self.add_error("address", _("This address is already on the suppression list."))
            return cleaned
        self.instance.address_hash = hashed
        self.instance.reason = Suppression.Reason.MANUAL
        # Never keep the address itself, not even in the form's data going back to a page.
        cleaned["address"] = ""
        return cleaned


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin[Suppression]):
    """Entries are added by address and kept only as a hash; search takes a full address."""

    list_display = ("created_at", "channel", "short_hash", "reason", "note")
    list_filter = ("channel", "reason")
    search_fields = ("note",)
    search_help_text = _("Type a full email address or phone number to see if it is suppressed.")
    readonly_fields = ("channel", "address_hash", "reason", "note", "created_at")
    ordering = ("-created_at", "-id")

    @admin.display(description=_("address hash"))
    def short_hash(self, obj: Suppression) -> str:
        return f"{obj.address_hash[:12]}…"

    def get_form(
        self,
        request: HttpRequest,
        obj: Suppression | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[forms.ModelForm[Suppression]]:
        if obj is None:
            kwargs["form"] = SuppressionAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Suppression | None = None) -> Any:
        if obj is None:
            return ("channel", "address", "note")
        return self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Suppression | None = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Suppression], search_term: str
    ) -> tuple[QuerySet[Suppression], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        hashes: list[tuple[str, str]] = []
        candidates = (("email", normalise_email), ("sms", normalise_phone))
        for channel, normalise in candidates:
            try:
                hashes.append((channel, address_hash(channel, normalise(term))))
            except ValidationError:
                continue
        if not hashes:
            return queryset.filter(note__icontains=term), False
        matches = queryset.none()
        for channel, hashed in hashes:
            matches = matches | queryset.filter(channel=channel, address_hash=hashed)
        return matches, False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # An erased person's entry is the only thing keeping them out of marketing.
        if obj is not None and obj.reason == Suppression.Reason.ERASED:
            return False
        return super().has_delete_permission(request, obj)


# --- Double opt-in and API keys ---------------------------------------------------------------


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


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    """Keys are created with the `crm create-api-key` command, which shows the key once; here
    they can be seen (never their hash) and revoked."""

    list_display = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix")
    fields = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Revoke selected API keys"), permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(
            request,
            ngettext("Revoked %(count)d key.", "Revoked %(count)d keys.", revoked)
            % {"count": revoked},
            messages.SUCCESS,
        )
