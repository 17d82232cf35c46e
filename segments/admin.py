"""Admin for segments: the builder (a form per condition type, the JSON as an escape hatch),
a live preview, warnings and the size-over-time chart.

Contact names are attacker-controlled: the page renders them through the template's escaping
and the preview script through textContent, never as HTML.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from core.admin import ReadOnlyModelAdmin
from core.charts import Point, Series, line_chart
from segments.compiler.forms import CONDITION_FORMS, CONDITION_LABELS
from segments.compiler.tree import DefinitionError, definition_describe, definition_parse
from segments.models.analytics import (
    ClusteringRun,
    ContactLifecycle,
    ContactPrediction,
    ContactRFM,
    LifecycleChange,
    PredictionFit,
)
from segments.models.definitions import Segment, SegmentMembership, SegmentSizeSnapshot
from segments.models.lists import StaticList, StaticListMember
from segments.selectors import (
    segment_current_members,
    segment_preview,
    segment_size_history,
    segment_warnings,
)

SAMPLE_SIZE = 20


class SegmentAdminForm(forms.ModelForm[Segment]):
    definition = forms.JSONField(
        label="Definition (JSON)",
        widget=forms.Textarea(attrs={"rows": 14, "cols": 100, "spellcheck": "false"}),
        help_text=Segment._meta.get_field("definition").help_text,
    )

    class Meta:
        model = Segment
        fields = ("name", "slug", "description", "definition", "min_size", "is_active")


def size_chart_svg(
    snapshots: list[SegmentSizeSnapshot], *, width: int = 640, height: int = 180
) -> SafeString:
    """A line chart of daily sizes as inline SVG (no script, no external file)."""
    if not snapshots:
        return format_html('<p class="help">{}</p>', "No size snapshots yet: refresh the segment.")
    first, last = snapshots[0].date.isoformat(), snapshots[-1].date.isoformat()
    return line_chart(
        series=[
            Series(
                points=[
                    Point(snapshot.size, f"{snapshot.date.isoformat()}: {snapshot.size}")
                    for snapshot in snapshots
                ]
            )
        ],
        x_labels=(first, last),
        y_max=max(max(snapshot.size for snapshot in snapshots), 1),
        css_class="segment-size-chart",
        aria_label=f"Segment size from {snapshots[0].date} to {snapshots[-1].date}",
        width=width,
        height=height,
    )


def _builder_forms() -> list[dict[str, Any]]:
    return [
        {
            "type": kind,
            "label": CONDITION_LABELS.get(kind, kind),
            "phrase": form_class.label,
            "form": form_class(prefix=f"builder-{kind}", auto_id="id_%s"),
        }
        for kind, form_class in CONDITION_FORMS.items()
    ]


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin[Segment]):
    form = SegmentAdminForm
    list_display = ("name", "slug", "size", "too_small", "is_active", "last_refreshed_at")
    list_filter = ("is_active",)
    search_fields = ("name", "slug", "description")
    readonly_fields = ("size", "last_refreshed_at", "in_words")
    prepopulated_fields = {"slug": ("name",)}
    actions = ("refresh_now",)
    fieldsets = (
        (None, {"fields": ("name", "slug", "description", "is_active", "min_size")}),
        ("Definition", {"fields": ("in_words", "definition")}),
        ("Status", {"fields": ("size", "last_refreshed_at")}),
    )

    @admin.display(boolean=True, description="too small")
    def too_small(self, segment: Segment) -> bool:
        return segment.size < segment.min_size

    @admin.display(description="in words")
    def in_words(self, segment: Segment) -> str:
        try:
            return definition_describe(definition_parse(segment.definition))
        except DefinitionError:
            return "(the definition has errors)"

    @admin.action(description="Refresh the selected segments now (in the background)")
    def refresh_now(self, request: HttpRequest, queryset: QuerySet[Segment]) -> None:
        from segments.tasks import segments_refresh_by_id

        ids = list(queryset.values_list("pk", flat=True))
        segments_refresh_by_id.delay(ids)
        self.message_user(
            request,
            f"Refresh of {len(ids)} segment(s) queued; sizes update when it is done.",
            messages.INFO,
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "preview/",
                self.admin_site.admin_view(self.preview_view),
                name="segments_segment_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """POST definition=<JSON>: who matches it now (size and a sample), or its errors."""
        return require_POST(self._preview)(request)

    def _preview(self, request: HttpRequest) -> HttpResponse:
        if not (self.has_change_permission(request) or self.has_add_permission(request)):
            return JsonResponse({"errors": ["permission denied"]}, status=403)
        try:
            definition = json.loads(request.POST.get("definition", ""))
        except ValueError as exc:
            return JsonResponse(
                {"errors": [f"the definition is not valid JSON: {exc}"]}, status=400
            )
        try:
            node = definition_parse(definition)
            preview = segment_preview(definition=definition, sample_size=SAMPLE_SIZE)
        except DefinitionError as exc:
            return JsonResponse({"errors": exc.messages}, status=400)
        return JsonResponse(
            {
                "size": preview.size,
                "in_words": definition_describe(node),
                "sample": [
                    {
                        "id": contact.pk,
                        "label": str(contact),
                        "url": reverse("admin:crm_contact_change", args=[contact.pk]),
                    }
                    for contact in preview.sample
                ],
            }
        )

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = dict(extra_context or {})
        context["builder_forms"] = _builder_forms()
        context["preview_url"] = reverse("admin:segments_segment_preview")
        segment = self.get_object(request, object_id) if object_id else None
        if segment is not None:
            context["segment_warnings"] = segment_warnings(segment=segment)
            context["size_chart"] = size_chart_svg(segment_size_history(segment=segment))
            context["current_members"] = [
                membership.contact
                for membership in segment_current_members(segment=segment)
                .select_related("contact")
                .order_by("-entered_at")[:SAMPLE_SIZE]
            ]
        return super().changeform_view(request, object_id, form_url, context)


@admin.register(SegmentMembership)
class SegmentMembershipAdmin(admin.ModelAdmin[SegmentMembership]):
    list_display = ("segment", "contact", "entered_at", "exited_at")
    list_filter = ("segment",)
    list_select_related = ("segment", "contact")
    raw_id_fields = ("contact",)
    date_hierarchy = "entered_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # memberships are the refresh's to write

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Analytics: read-only, recomputed by `manage.py segments rfm|lifecycle|cluster|fit-clv` ---


@admin.register(ContactRFM)
class ContactRFMAdmin(ReadOnlyModelAdmin[ContactRFM]):
    list_display = (
        "contact",
        "group",
        "recency_score",
        "frequency_score",
        "monetary_score",
        "recency_days",
        "frequency",
        "monetary",
        "computed_at",
    )
    list_filter = ("group", "recency_score", "frequency_score", "monetary_score")
    list_select_related = ("contact",)
    search_fields = ("contact__email_key", "contact__last_name")
    raw_id_fields = ("contact",)


@admin.register(ContactLifecycle)
class ContactLifecycleAdmin(ReadOnlyModelAdmin[ContactLifecycle]):
    list_display = ("contact", "stage", "since", "updated_at")
    list_filter = ("stage",)
    list_select_related = ("contact",)
    search_fields = ("contact__email_key", "contact__last_name")
    raw_id_fields = ("contact",)


@admin.register(LifecycleChange)
class LifecycleChangeAdmin(ReadOnlyModelAdmin[LifecycleChange]):
    list_display = ("contact", "from_stage", "to_stage", "changed_at")
    list_filter = ("to_stage", "from_stage")
    list_select_related = ("contact",)
    date_hierarchy = "changed_at"
    raw_id_fields = ("contact",)


@admin.register(ClusteringRun)
class ClusteringRunAdmin(ReadOnlyModelAdmin[ClusteringRun]):
    list_display = ("id", "k", "contacts", "silhouette", "seed", "created_at")
    readonly_fields = ("cluster_descriptions",)

    @admin.display(description="clusters")
    def cluster_descriptions(self, obj: ClusteringRun) -> str:
        rows = [
            (item.get("label", ""), item.get("size", ""), item.get("description", ""))
            for item in (obj.descriptions or [])
        ]
        return format_html_join("", "<p><b>{}</b> ({} contacts): {}</p>", rows)


@admin.register(ContactPrediction)
class ContactPredictionAdmin(ReadOnlyModelAdmin[ContactPrediction]):
    list_display = ("contact", "p_alive", "expected_purchases", "horizon_days", "computed_at")
    list_select_related = ("contact",)
    search_fields = ("contact__email_key", "contact__last_name")
    raw_id_fields = ("contact",)


@admin.register(PredictionFit)
class PredictionFitAdmin(ReadOnlyModelAdmin[PredictionFit]):
    """Every BG/NBD fit attempt, so a day without predictions shows its reason."""

    list_display = (
        "created_at",
        "status",
        "reason",
        "calibration_end",
        "unit",
        "customers",
        "repeat_buyers",
        "predictions",
    )
    list_filter = ("status",)
    date_hierarchy = "created_at"


class StaticListMemberInline(admin.TabularInline[StaticListMember, StaticList]):
    model = StaticListMember
    extra = 0
    raw_id_fields = ("contact",)
    readonly_fields = ("added_at", "added_by_firing_id")


@admin.register(StaticList)
class StaticListAdmin(admin.ModelAdmin[StaticList]):
    list_display = ("name", "slug", "member_count", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (StaticListMemberInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[StaticList]:
        return super().get_queryset(request).annotate(member_total=Count("members"))

    @admin.display(description="members", ordering="member_total")
    def member_count(self, obj: StaticList) -> int:
        total: int = getattr(obj, "member_total", 0)
        return total
