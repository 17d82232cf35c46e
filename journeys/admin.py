"""Admin for journeys, minimal until the step editor: the list, a change page for the
settings a marketer changes in place (name, description, enabled, paused) with the steps
shown as YAML and the version history, and the system-written records read-only. Journeys
are created and their steps changed by `manage.py journeys import`, which validates and
versions them (journeys/services.py)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from core.admin import ReadOnlyModelAdmin, ReadOnlyPermissions
from journeys.admin_insight import JourneyInsightMixin, contact_page_register
from journeys.models import Enrollment, Journey, JourneyVersion, StepRun
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
            "<details><summary>show</summary><pre>{}</pre></details>", steps_yaml(obj.steps)
        )


@admin.register(Journey)
class JourneyAdmin(JourneyInsightMixin, admin.ModelAdmin[Journey]):
    list_display = ("name", "slug", "status", "enabled", "version", "updated_at")
    list_filter = ("status", "enabled")
    search_fields = ("name", "slug", "description")
    list_select_related = ("current_version",)
    fields = (
        "name",
        "slug",
        "description",
        "enabled",
        "status",
        "reentry",
        "goal",
        "entry_segment",
        "version",
        "steps_as_yaml",
    )
    readonly_fields = ("slug", "reentry", "goal", "entry_segment", "version", "steps_as_yaml")
    inlines = (JourneyVersionInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="version", ordering="current_version__number")
    def version(self, obj: Journey) -> str:
        version = obj.current_version
        return f"v{version.number}" if version is not None else "unpublished"

    @admin.display(description="re-entry")
    def reentry(self, obj: Journey) -> str:
        text = str(obj.get_reentry_mode_display())
        if obj.reentry_mode == Journey.Reentry.ONCE_PER_DAYS:
            return f"{text}: {obj.reentry_days}"
        if obj.reentry_mode == Journey.Reentry.ONCE_PER_KEY:
            return f"{text}: {obj.reentry_key}"
        return text

    @admin.display(description="goal")
    def goal(self, obj: Journey) -> str:
        if not obj.goal_event:
            return "none"
        filters = f" where {obj.goal_where}" if obj.goal_where else ""
        return f"{obj.goal_event} within {obj.goal_within_days} days{filters}"

    @admin.display(description="steps (current version)")
    def steps_as_yaml(self, obj: Journey) -> str:
        version = obj.current_version
        if version is None:
            return "no published version"
        return format_html("<pre>{}</pre>", steps_yaml(version.steps))


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
