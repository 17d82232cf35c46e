"""Admin for journeys: the list, the editor (settings as fields, the steps as rows from the
step registry's forms, the steps' YAML as a fallback; journeys/forms_admin.py), saved through
journey_save so a structural change publishes a new version, the version history, and the
system-written records read-only. Contact names and event properties are attacker-controlled:
everything goes through format_html or the templates' escaping."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html

from core.admin import ReadOnlyModelAdmin, ReadOnlyPermissions
from journeys.admin_insight import JourneyInsightMixin, contact_page_register
from journeys.forms_admin import JourneyAdminForm
from journeys.forms_steps import editor_requested
from journeys.models import Enrollment, Journey, JourneyVersion, StepRun
from journeys.services import JourneyInvalid, journey_save
from journeys.yaml_io import steps_yaml


class JourneyVersionInline(ReadOnlyPermissions, admin.TabularInline[JourneyVersion, Journey]):
    model = JourneyVersion
    extra = 0
    fields = ("number", "published_at", "published_by", "structure_hash", "steps_pretty")
    readonly_fields = fields
    ordering = ("-number",)
    verbose_name_plural = "version history"

    @admin.display(description="steps")
    def steps_pretty(self, obj: JourneyVersion) -> str:
        return format_html(
            "<details><summary>show</summary><pre>{}</pre></details>", steps_yaml(obj.steps or [])
        )


@admin.register(Journey)
class JourneyAdmin(JourneyInsightMixin, admin.ModelAdmin[Journey]):
    form = JourneyAdminForm
    change_form_template = "admin/journeys/journey/change_form.html"
    list_display = ("name", "slug", "status", "enabled", "version", "updated_at")
    list_filter = ("status", "enabled")
    search_fields = ("name", "slug", "description")
    list_select_related = ("current_version",)
    readonly_fields = ("version",)
    inlines = (JourneyVersionInline,)

    def get_fieldsets(self, request: HttpRequest, obj: Journey | None = None) -> Any:
        # The steps are drawn by the template, below these, at full width; the flow diagram
        # and its controls come just before them.
        return self.with_insight(
            [
                (None, {"fields": ("name", "slug", "description", "enabled", "status", "version")}),
                (
                    "Entry and re-entry",
                    {"fields": ("entry_segment", "reentry_mode", "reentry_days", "reentry_key")},
                ),
                ("Goal", {"fields": ("goal_event", "goal_within_days", "goal_where")}),
            ],
            obj,
        )

    def get_form(
        self, request: HttpRequest, obj: Journey | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        kwargs["fields"] = None  # the form's own Meta.fields, the steps included
        return super().get_form(request, obj, change, **kwargs)

    def get_inlines(self, request: HttpRequest, obj: Journey | None) -> Any:
        return (JourneyVersionInline,) if obj is not None else ()

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method == "POST" and editor_requested(request.POST):
            messages.info(
                request,
                "Not saved yet: the step editor was updated. Fill in the fields, then save.",
            )
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(
        self, request: HttpRequest, obj: Journey, form: JourneyAdminForm, change: bool
    ) -> None:
        try:
            saved = journey_save(form.journey_data(), via="admin", user=request.user)
        except JourneyInvalid as exc:  # validated in the form already; a race is reported
            messages.error(request, str(exc))
            raise
        for model_field in Journey._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(saved.journey, model_field.attname))
        obj._state.adding = False
        version = saved.journey.current_version
        number = version.number if version is not None else 0
        if saved.published is not None:
            messages.success(request, f"Published version {number}.")
        else:
            messages.success(request, f"Saved; steps unchanged, still version {number}.")

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # The history inline is read-only: nothing to save, nothing to report.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    @admin.display(description="version", ordering="current_version__number")
    def version(self, obj: Journey) -> str:
        version = obj.current_version
        return f"v{version.number}" if version is not None else "unpublished"


@admin.register(JourneyVersion)
class JourneyVersionAdmin(ReadOnlyModelAdmin[JourneyVersion]):
    list_display = ("journey", "number", "published_at", "published_by")
    list_filter = ("journey",)
    list_select_related = ("journey",)


@admin.register(Enrollment)
class EnrollmentAdmin(ReadOnlyModelAdmin[Enrollment]):
    list_display = ("contact", "journey", "version", "status", "step_id", "due_at", "entered_at")
    list_filter = ("status", "journey")
    list_select_related = ("contact", "journey", "version__journey")
    raw_id_fields = ("contact",)


@admin.register(StepRun)
class StepRunAdmin(ReadOnlyModelAdmin[StepRun]):
    list_display = ("enrollment", "step_id", "sequence", "status", "started_at", "finished_at")
    list_filter = ("status",)
    raw_id_fields = ("enrollment",)


contact_page_register()
