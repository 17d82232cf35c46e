"""The data-quality report: which live contacts are unreachable, invalid or incomplete, counted
in one aggregate query. Shown in admin and by `python manage.py crm data-quality`."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise

from crm.models import ConsentRecord, Contact


@dataclass(frozen=True)
class Issue:
    key: str
    group: str  # "invalid" or "incomplete"
    label: StrOrPromise
    # Built on demand: the condition is a filter on live contacts, usable in Count(filter=).
    build: Callable[[], Any]

    def condition(self) -> Any:
        return self.build()


def _invalid_timezone() -> Q:
    return ~Q(timezone="") & ~Q(timezone__in=sorted(zoneinfo.available_timezones()))


def _no_consent() -> Any:
    return ~Exists(ConsentRecord.objects.filter(contact_id=OuterRef("pk")))


ISSUES: dict[str, Issue] = {
    issue.key: issue
    for issue in (
        Issue(
            "unreachable",
            "invalid",
            _("Unreachable: no email, phone or external id"),
            lambda: Q(email_key__isnull=True, phone__isnull=True, external_id__isnull=True),
        ),
        Issue(
            "invalid_email",
            "invalid",
            _("Email address that is not valid"),
            lambda: Q(email__isnull=False) & ~Q(email__regex=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
        ),
        Issue(
            "invalid_phone",
            "invalid",
            _("Phone number not in E.164 (e.g. +14155550123)"),
            lambda: Q(phone__isnull=False) & ~Q(phone__regex=r"^\+[1-9][0-9]{6,14}$"),
        ),
        Issue(
            "invalid_timezone",
            "invalid",
            _("Time zone that is not an IANA zone"),
            _invalid_timezone,
        ),
        Issue(
            "missing_name",
            "invalid",
            _("No first or last name"),
            lambda: Q(first_name="", last_name=""),
        ),
        Issue(
            "no_address",
            "incomplete",
            _("No email and no phone"),
            lambda: Q(email__isnull=True, phone__isnull=True),
        ),
        Issue(
            "no_timezone",
            "incomplete",
            _("No time zone (SMS quiet hours take the strictest window)"),
            lambda: Q(timezone=""),
        ),
        Issue("no_consent", "incomplete", _("No consent entry on any channel"), _no_consent),
    )
}


def quality_counts() -> dict[str, int]:
    """Live contacts, and how many have each issue, in one aggregate query."""
    aggregates: dict[str, Any] = {"total": Count("pk")}
    for key, issue in ISSUES.items():
        aggregates[key] = Count("pk", filter=issue.condition())
    counts: dict[str, int] = Contact.objects.filter(is_erased=False).aggregate(**aggregates)
    return counts
