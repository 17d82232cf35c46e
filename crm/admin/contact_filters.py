"""The contact list's consent filters."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from crm.models import Channel, ConsentRecord
from crm.selectors import consent_status_subquery


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
