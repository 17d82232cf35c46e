"""Admin for the suppression list, which holds addresses only as hashes."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from crm.models import Channel, Suppression
from crm.normalise import address_hash, normalise_email, normalise_phone


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
