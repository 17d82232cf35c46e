"""Admin for data quality: likely duplicates side by side, merge audits, and a report of
unreachable, invalid and incomplete contacts.

Contact names and addresses are attacker-controlled: they reach the page only through the
template engine's escaping or format_html. Counts are SQL aggregates, one query for the
whole report. Merging needs the change permission on merge candidates; a marketer with view
permissions sees everything and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.admin import ReadOnlyModelAdmin, row_for_url
from crm.models import (
    Contact,
    ContactAlias,
    ContactMerge,
    DataQuality,
    MergeCandidate,
)
from crm.selectors_quality import ISSUES, quality_counts
from crm.services.duplicates.candidates import candidate_dismiss
from crm.services.merge import (
    ContactMergeError,
    candidate_merge,
    contact_foreign_keys,
    contact_merge,
    merge_pick_survivor,
)

# A merge runs in the request; larger selections belong to `crm merge-duplicates`.
ACTION_LIMIT = 200

# --- The data-quality report --------------------------------------------------------------


class IssueFilter(admin.SimpleListFilter):
    title = _("issue")
    parameter_name = "issue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(issue.key, issue.label) for issue in ISSUES.values()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        issue = ISSUES.get(self.value() or "")
        return queryset.filter(issue.condition()) if issue else queryset


def _contact_link(contact: Contact | None, *, contact_id: int | None = None) -> str:
    if contact is None:
        return format_html("#{} (gone)", contact_id)
    url = reverse("admin:crm_contact_change", args=[contact.pk])
    return format_html('<a href="{}">#{} {}</a>', url, contact.pk, str(contact))


@admin.register(DataQuality)
class DataQualityAdmin(ReadOnlyModelAdmin[DataQuality]):
    """Its changelist is the report; with ?issue=… it lists the contacts behind a count."""

    list_display = ("contact", "email", "phone", "timezone", "created_at")
    list_filter = (IssueFilter,)
    search_fields = ("email_key", "phone", "first_name", "last_name", "external_id")
    actions = None
    show_full_result_count = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("crm.view_contact") or super().has_view_permission(
            request, obj
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[DataQuality]:
        return super().get_queryset(request).filter(is_erased=False)

    @admin.display(description=_("contact"), ordering="pk")
    def contact(self, obj: DataQuality) -> str:
        return _contact_link(obj)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # A contact is edited on its own page.
        if not object_id.isdigit():
            raise Http404
        return HttpResponseRedirect(reverse("admin:crm_contact_change", args=[object_id]))

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if IssueFilter.parameter_name in request.GET or "q" in request.GET:
            return super().changelist_view(request, extra_context)
        return self.report_view(request)

    def report_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        counts = quality_counts()
        changelist = reverse("admin:crm_dataquality_changelist")
        groups: dict[str, list[dict[str, Any]]] = {"invalid": [], "incomplete": []}
        for issue in ISSUES.values():
            groups[issue.group].append(
                {
                    "label": issue.label,
                    "count": counts[issue.key],
                    "url": f"{changelist}?{urlencode({'issue': issue.key})}",
                }
            )
        open_candidates = MergeCandidate.objects.filter(status=MergeCandidate.Status.OPEN).count()
        candidates_url = reverse("admin:crm_mergecandidate_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": _("Data quality"),
            "opts": self.model._meta,
            "total": counts["total"],
            "invalid": groups["invalid"],
            "incomplete": groups["incomplete"],
            "open_candidates": open_candidates,
            "candidates_url": f"{candidates_url}?{urlencode({'status__exact': 'open'})}",
            "can_view_candidates": request.user.has_perm("crm.view_mergecandidate"),
        }
        return TemplateResponse(request, "admin/crm/dataquality/report.html", context)


# --- Merge candidates ---------------------------------------------------------------------

COMPARED_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "external_id",
    "locale",
    "timezone",
    "country",
    "created_at",
    "last_activity_at",
    "last_purchase_at",
)


def related_counts(contact_ids: list[int]) -> dict[str, dict[int, int]]:
    """{verbose name plural: {contact_id: rows}} for every model pointing at Contact, one
    grouped query per relation."""
    result: dict[str, dict[int, int]] = {}
    for field in contact_foreign_keys():
        model = field.model
        rows = (
            model._base_manager.filter(**{f"{field.attname}__in": contact_ids})
            .values(field.attname)
            .annotate(n=Count("pk"))
            .values_list(field.attname, "n")
        )
        label = str(model._meta.verbose_name_plural)
        if field.name != "contact":
            label = f"{label} ({field.verbose_name})"
        counts = result.setdefault(label, {})
        for contact_id, n in rows:
            counts[contact_id] = counts.get(contact_id, 0) + n
    return result


def _show(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


@admin.register(MergeCandidate)
class MergeCandidateAdmin(admin.ModelAdmin[MergeCandidate]):
    list_display = ("pair", "score", "reasons_shown", "status", "created_at", "reviewed_by")
    list_filter = ("status",)
    list_select_related = ("contact_a", "contact_b", "reviewed_by")
    ordering = ("-score", "pk")
    search_fields = (
        "contact_a__email_key",
        "contact_b__email_key",
        "contact_a__last_name",
        "contact_b__last_name",
        "contact_a__phone",
        "contact_b__phone",
    )
    actions = ("merge_keep_best", "dismiss")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # candidates come from detection

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a deleted dismissal would be proposed again

    @admin.display(description=_("contacts"))
    def pair(self, obj: MergeCandidate) -> str:
        url = reverse("admin:crm_mergecandidate_change", args=[obj.pk])
        return format_html(
            '<a href="{}">#{} {} ~ #{} {}</a>',
            url,
            obj.contact_a_id,
            str(obj.contact_a),
            obj.contact_b_id,
            str(obj.contact_b),
        )

    @admin.display(description=_("reasons"))
    def reasons_shown(self, obj: MergeCandidate) -> str:
        reasons = obj.reasons if isinstance(obj.reasons, list) else []
        return format_html_join("; ", "{}", ((str(reason),) for reason in reasons))

    @admin.action(
        description=_("Merge (keep the more complete, then older, contact as survivor)"),
        permissions=("change",),
    )
    def merge_keep_best(self, request: HttpRequest, queryset: QuerySet[MergeCandidate]) -> None:
        ids = list(
            queryset.filter(status=MergeCandidate.Status.OPEN)
            .order_by("-score", "pk")
            .values_list("pk", flat=True)[: ACTION_LIMIT + 1]
        )
        if len(ids) > ACTION_LIMIT:
            self.message_user(
                request,
                format_html(
                    "Select at most {} pairs, or run "
                    "`manage.py crm merge-duplicates --min-score N`.",
                    ACTION_LIMIT,
                ),
                messages.ERROR,
            )
            return
        merged = 0
        for pk in ids:
            try:
                if candidate_merge(candidate_id=pk, merged_by=request.user.get_username()):
                    merged += 1
            except ContactMergeError as exc:
                self.message_user(request, format_html("Pair {}: {}", pk, str(exc)), messages.ERROR)
        self.message_user(
            request,
            ngettext("Merged %(n)d pair.", "Merged %(n)d pairs.", merged) % {"n": merged},
            messages.SUCCESS,
        )

    @admin.action(description=_("Not a duplicate"), permissions=("change",))
    def dismiss(self, request: HttpRequest, queryset: QuerySet[MergeCandidate]) -> None:
        count = candidate_dismiss(candidates=queryset, reviewed_by_id=request.user.pk)
        self.message_user(
            request,
            ngettext(
                "%(n)d pair marked as not a duplicate.",
                "%(n)d pairs marked as not duplicates.",
                count,
            )
            % {"n": count},
            messages.SUCCESS,
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The two contacts side by side, with merge and dismiss buttons."""
        candidate = row_for_url(
            MergeCandidate.objects.select_related("contact_a", "contact_b", "reviewed_by"),
            object_id,
        )
        if candidate is None:
            raise Http404
        if not self.has_view_or_change_permission(request, candidate):
            raise PermissionDenied
        if request.method == "POST":
            return self._review(request, candidate)
        return self._compare(request, candidate)

    def _review(self, request: HttpRequest, candidate: MergeCandidate) -> HttpResponse:
        if not self.has_change_permission(request, candidate):
            raise PermissionDenied
        changelist = reverse("admin:crm_mergecandidate_changelist")
        if candidate.status != MergeCandidate.Status.OPEN:
            self.message_user(request, _("This pair was already reviewed."), messages.WARNING)
            return HttpResponseRedirect(changelist)
        if "_dismiss" in request.POST:
            candidate_dismiss(
                candidates=MergeCandidate.objects.filter(pk=candidate.pk),
                reviewed_by_id=request.user.pk,
            )
            self.message_user(request, _("Marked as not a duplicate."), messages.SUCCESS)
            return HttpResponseRedirect(changelist)
        keep = request.POST.get("_keep")
        pair = {
            str(candidate.contact_a_id): candidate.contact_a,
            str(candidate.contact_b_id): candidate.contact_b,
        }
        if keep not in pair:
            raise PermissionDenied
        survivor = pair[keep]
        duplicate = (
            candidate.contact_b if survivor.pk == candidate.contact_a_id else candidate.contact_a
        )
        try:
            audit = contact_merge(
                survivor=survivor,
                duplicate=duplicate,
                merged_by=request.user.get_username(),
                score=candidate.score,
            )
        except ContactMergeError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(changelist)
        self.message_user(
            request,
            format_html(
                "Merged #{} into #{}. The duplicate's profile is kept in the merge audit.",
                duplicate.pk,
                survivor.pk,
            ),
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:crm_contactmerge_change", args=[audit.pk]))

    def _compare(self, request: HttpRequest, candidate: MergeCandidate) -> HttpResponse:
        a, b = candidate.contact_a, candidate.contact_b
        aliases: dict[int, list[str]] = {a.pk: [], b.pk: []}
        for contact_id, kind, value in ContactAlias.objects.filter(
            contact_id__in=[a.pk, b.pk]
        ).values_list("contact_id", "kind", "value"):
            aliases[contact_id].append(f"{kind}: {value}")
        rows = []
        for name in COMPARED_FIELDS:
            left, right = _show(getattr(a, name)), _show(getattr(b, name))
            label = getattr(Contact._meta.get_field(name), "verbose_name", name)
            rows.append({"label": label, "a": left, "b": right, "differ": left != right})
        rows.append(
            {
                "label": _("attributes"),
                "a": _show(a.attributes),
                "b": _show(b.attributes),
                "differ": a.attributes != b.attributes,
            }
        )
        rows.append(
            {
                "label": _("former addresses"),
                "a": ", ".join(aliases[a.pk]) or "—",
                "b": ", ".join(aliases[b.pk]) or "—",
                "differ": False,
            }
        )
        counts = [
            {"label": label, "a": per.get(a.pk, 0), "b": per.get(b.pk, 0)}
            for label, per in related_counts([a.pk, b.pk]).items()
        ]
        suggested, _other = merge_pick_survivor(a=a, b=b)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Are these the same person?"),
            "opts": self.model._meta,
            "candidate": candidate,
            "a": a,
            "b": b,
            "a_url": reverse("admin:crm_contact_change", args=[a.pk]),
            "b_url": reverse("admin:crm_contact_change", args=[b.pk]),
            "rows": rows,
            "counts": counts,
            "suggested_id": suggested.pk,
            "can_review": self.has_change_permission(request, candidate)
            and candidate.status == MergeCandidate.Status.OPEN,
        }
        return TemplateResponse(request, "admin/crm/mergecandidate/compare.html", context)


# --- Merge audits -------------------------------------------------------------------------


@admin.register(ContactMerge)
class ContactMergeAdmin(ReadOnlyModelAdmin[ContactMerge]):
    """Read-only: the audit of a merge is evidence, not a working document."""

    list_display = ("merged_at", "survivor_link", "duplicate_uuid", "score", "merged_by")
    list_select_related = ("survivor",)
    search_fields = ("duplicate_uuid", "merged_by", "survivor__email_key")
    date_hierarchy = "merged_at"
    readonly_fields = (
        "survivor_link",
        "duplicate_uuid",
        "snapshot_shown",
        "moved_shown",
        "score",
        "merged_by",
        "merged_at",
    )
    fields = readonly_fields

    @admin.display(description=_("survivor"), ordering="survivor_id")
    def survivor_link(self, obj: ContactMerge) -> str:
        return _contact_link(obj.survivor)

    @admin.display(description=_("the duplicate as it was"))
    def snapshot_shown(self, obj: ContactMerge) -> str:
        snapshot = obj.duplicate_snapshot if isinstance(obj.duplicate_snapshot, dict) else {}
        return format_html(
            "<table>{}</table>",
            format_html_join(
                "",
                "<tr><th>{}</th><td>{}</td></tr>",
                ((str(key), _show(value)) for key, value in snapshot.items()),
            ),
        )

    @admin.display(description=_("rows moved to the survivor"))
    def moved_shown(self, obj: ContactMerge) -> str:
        moved = obj.moved if isinstance(obj.moved, dict) else {}
        if not moved:
            return "—"
        return format_html_join(", ", "{}: {}", ((str(k), str(v)) for k, v in moved.items()))
