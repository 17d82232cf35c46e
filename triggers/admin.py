"""Admin for trigger rules: editing with per-field errors from the registry's forms, the
version history, firings over time, recent firings, "why did or didn't this contact fire"
and a dry-run button. Contact names are attacker-controlled: everything goes through
format_html or the templates' escaping."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.forms.utils import ErrorDict
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from core.charts import Bar, bar_chart
from crm.models import Contact
from triggers.actions import actions as action_registry
from triggers.conditions import conditions as condition_registry
from triggers.forms_admin import (
    RuleEntriesField,
    RuleEntriesWidget,
    editor_requested,
    path_errors_by_kind,
)
from triggers.models import TriggerFiring, TriggerRule, TriggerRuleVersion
from triggers.selectors import (
    rule_dry_run,
    rule_explain,
    rule_firings_per_day,
    rule_recent_firings,
)
from triggers.services.firings import firing_retry
from triggers.services.rules import RuleInvalid, trigger_rule_save
from triggers.validation import rule_validate

CONDITIONS_HELP = (
    "One row per condition: pick its type, fill in its fields. "
    "Match mode decides whether all of them or any one must hold."
)
ACTIONS_HELP = "One row per action, run in this order when the rule fires."


class TriggerRuleAdminForm(forms.ModelForm[TriggerRule]):
    """Conditions and actions are edited as rows built from the registries
    (triggers/forms_admin.py); the whole rule is then checked by rule_validate, the same
    check the service, YAML import and API use, and each problem is put next to its field."""

    conditions = RuleEntriesField(
        kind="conditions",
        registry=condition_registry,
        add_label="Add a condition",
        help_text=CONDITIONS_HELP,
    )
    actions = RuleEntriesField(
        kind="actions", registry=action_registry, add_label="Add an action", help_text=ACTIONS_HELP
    )

    class Meta:
        model = TriggerRule
        fields = (
            "name",
            "slug",
            "enabled",
            "description",
            "match_mode",
            "conditions",
            "actions",
            "reentry",
            "reentry_days",
            "priority",
            "active_from",
            "active_until",
            "audience_segment",
        )

    @property
    def editor_only(self) -> bool:
        """The POST came from an editor button (show fields, add, remove): re-render, don't
        validate or save."""
        return self.is_bound and editor_requested(self.data)

    def full_clean(self) -> None:
        if self.editor_only:
            self._errors = ErrorDict()
            self.cleaned_data = {}
            return
        super().full_clean()

    def is_valid(self) -> bool:
        return super().is_valid() and not self.editor_only

    def rule_data(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        segment = data.get("audience_segment")
        data["audience_segment"] = segment.slug if segment is not None else None
        for key in ("active_from", "active_until"):
            data[key] = data[key].isoformat() if data.get(key) else None
        data["description"] = data.get("description") or ""
        return data

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # Validated even when other fields already failed, so every problem shows at once;
        # a field that failed its own check is not reported twice.
        failed = set(self.errors)
        data = self.rule_data()
        for kind in ("conditions", "actions"):
            data.setdefault(kind, [])
        clean, errors = rule_validate(data)
        located = [(error.path, error.message) for error in errors]
        for kind in ("conditions", "actions"):
            widget = self.fields[kind].widget
            if isinstance(widget, RuleEntriesWidget):
                widget.path_errors = path_errors_by_kind(located, kind)
        for error in errors:
            head = error.path.split("[")[0].split(".")[0]
            field = head if head in self.fields else None
            if field in failed:
                continue
            if field in ("conditions", "actions") and error.path != field:
                continue  # shown next to its row's field; summarised below
            self.add_error(field, f"{error.path}: {error.message}")
        for kind in ("conditions", "actions"):
            paths = [error.path for error in errors if error.path.startswith(f"{kind}[")]
            if paths and kind not in failed:
                self.add_error(
                    kind, f"Correct the marked field(s) in the rows below: {', '.join(paths)}."
                )
        if not errors:
            cleaned["conditions"] = clean["conditions"]
            cleaned["actions"] = clean["actions"]
        return cleaned


class TriggerRuleVersionInline(admin.TabularInline[TriggerRuleVersion, TriggerRule]):
    model = TriggerRuleVersion
    extra = 0
    can_delete = False
    fields = ("version", "edited_at", "edited_by", "edited_via", "snapshot_pretty")
    readonly_fields = fields
    ordering = ("-version",)
    verbose_name_plural = "version history"

    def has_add_permission(self, request: HttpRequest, obj: TriggerRule | None = None) -> bool:
        return False

    @admin.display(description="rule after the edit")
    def snapshot_pretty(self, obj: TriggerRuleVersion) -> SafeString:
        return format_html(
            "<details><summary>show</summary><pre>{}</pre></details>",
            json.dumps(obj.snapshot, indent=2, ensure_ascii=False),
        )


def firings_chart_svg(
    series: list[tuple[Any, int]], *, width: int = 640, height: int = 140
) -> SafeString:
    """Daily firings as inline SVG bars, with a title per bar (no script)."""
    peak = max((count for _, count in series), default=0) or 1
    return bar_chart(
        bars=[Bar(count, f"{day.isoformat()}: {count}") for day, count in series],
        x_labels=(
            series[0][0].isoformat() if series else "",
            series[-1][0].isoformat() if series else "",
        ),
        top_label=f"max {peak}/day",
        aria_label="firings per day",
        width=width,
        height=height,
    )


@admin.register(TriggerRule)
class TriggerRuleAdmin(admin.ModelAdmin[TriggerRule]):
    form = TriggerRuleAdminForm
    list_display = (
        "name",
        "slug",
        "enabled",
        "priority",
        "reentry",
        "version",
        "updated_at",
        "firings_7d",
    )
    list_filter = ("enabled", "reentry")
    search_fields = ("name", "slug", "description")
    inlines = (TriggerRuleVersionInline,)
    readonly_fields = ("version", "firings_over_time", "recent_firings", "tools")

    def get_inlines(self, request: HttpRequest, obj: TriggerRule | None) -> Any:
        return (TriggerRuleVersionInline,) if obj is not None else ()

    def get_fieldsets(self, request: HttpRequest, obj: TriggerRule | None = None) -> Any:
        sets: list[Any] = [
            (None, {"fields": ("name", "slug", "enabled", "description", "priority")}),
            (
                "When",
                {
                    "fields": (
                        "match_mode",
                        "conditions",
                        "audience_segment",
                        "active_from",
                        "active_until",
                    ),
                },
            ),
            ("Then", {"fields": ("actions", "reentry", "reentry_days")}),
        ]
        if obj is not None:
            sets.append(
                ("Results", {"fields": ("version", "firings_over_time", "recent_firings", "tools")})
            )
        return sets

    @admin.display(description="firings (7 days)")
    def firings_7d(self, obj: TriggerRule) -> int:
        return sum(count for _, count in rule_firings_per_day(rule=obj, days=7))

    @admin.display(description="firings per day (30 days)")
    def firings_over_time(self, obj: TriggerRule) -> SafeString:
        series = rule_firings_per_day(rule=obj, days=30)
        table = format_html_join(
            "", "<tr><td>{}</td><td>{}</td></tr>", ((d.isoformat(), n) for d, n in series if n)
        )
        return format_html(
            "{}<details><summary>as a table</summary><table><tr><th>day</th><th>firings</th></tr>"
            "{}</table></details>",
            firings_chart_svg(series),
            table,
        )

    @admin.display(description="recent firings")
    def recent_firings(self, obj: TriggerRule) -> SafeString:
        rows = format_html_join(
            "",
            '<tr><td>{}</td><td><a href="{}">{}</a></td><td>v{}</td><td>{}</td><td>{}</td>'
            "<td>{}</td></tr>",
            (
                (
                    f"{f.fired_at:%Y-%m-%d %H:%M}",
                    reverse("admin:triggers_triggerfiring_change", args=[f.pk]),
                    str(f.contact),
                    f.rule_version,
                    f.source,
                    f.get_status_display(),
                    f.error[:200],
                )
                for f in rule_recent_firings(rule=obj)
            ),
        )
        return format_html(
            "<table><tr><th>when</th><th>contact</th><th>version</th><th>source</th>"
            "<th>status</th><th>error</th></tr>{}</table>",
            rows,
        )

    @admin.display(description="tools")
    def tools(self, obj: TriggerRule) -> SafeString:
        return format_html(
            '<form method="get" action="{}" class="rule-tools">'
            '<input name="contact" placeholder="contact id or email" required> '
            '<button type="submit">Why did or didn\'t this contact fire?</button></form>'
            ' &nbsp; <a class="button" href="{}">Dry run</a>',
            reverse("admin:triggers_triggerrule_why", args=[obj.pk]),
            reverse("admin:triggers_triggerrule_dry_run", args=[obj.pk]),
        )

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
                "Not saved yet: the rule editor was updated. Fill in the fields, then save.",
            )
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(
        self, request: HttpRequest, obj: TriggerRule, form: TriggerRuleAdminForm, change: bool
    ) -> None:
        existing = TriggerRule.objects.get(pk=obj.pk) if change and obj.pk else None
        try:
            saved = trigger_rule_save(
                data=form.rule_data(), rule=existing, user=request.user, via="admin"
            )
        except RuleInvalid as exc:  # validated in the form already; a race is still reported
            messages.error(request, str(exc))
            raise
        obj.pk = saved.pk
        obj.version = saved.version

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # The history inline is read-only: nothing to save, nothing to report.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:pk>/why/",
                self.admin_site.admin_view(self.why_view),
                name="triggers_triggerrule_why",
            ),
            path(
                "<int:pk>/dry-run/",
                self.admin_site.admin_view(self.dry_run_view),
                name="triggers_triggerrule_dry_run",
            ),
        ]
        return own + super().get_urls()

    def _rule_for(self, request: HttpRequest, pk: int) -> TriggerRule:
        rule = get_object_or_404(TriggerRule, pk=pk)
        if not self.has_view_permission(request, rule):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        return rule

    def why_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        rule = self._rule_for(request, pk)
        needle = (request.GET.get("contact") or "").strip()
        contact = None
        if needle:
            lookup = Q(email_key=needle.lower()) | Q(external_id=needle) | Q(phone=needle)
            if needle.isdigit():
                lookup |= Q(pk=int(needle))
            contact = Contact.objects.filter(lookup).first()
        explanation = rule_explain(rule=rule, contact_id=contact.pk) if contact else None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "rule": rule,
            "needle": needle,
            "contact": contact,
            "explanation": explanation,
            "title": f"Why did or didn't a contact fire “{rule.name}”?",
        }
        return TemplateResponse(request, "admin/triggers/triggerrule/why.html", context)

    def dry_run_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        rule = self._rule_for(request, pk)
        result = rule_dry_run(snapshot=dict(rule.snapshot()), rule_id=rule.pk)
        sample = list(Contact.objects.filter(pk__in=result.would_fire_now[:50]).order_by("pk"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "rule": rule,
            "result": result,
            "sample": sample,
            "chart": firings_chart_svg(result.per_day),
            "title": f"Dry run of “{rule.name}” (nothing is recorded or sent)",
        }
        return TemplateResponse(request, "admin/triggers/triggerrule/dry_run.html", context)


@admin.register(TriggerFiring)
class TriggerFiringAdmin(admin.ModelAdmin[TriggerFiring]):
    list_display = (
        "fired_at",
        "rule",
        "contact",
        "rule_version",
        "source",
        "status",
        "error_short",
    )
    list_filter = ("status", "source", "rule")
    search_fields = ("rule__slug", "contact__email", "occurrence_key")
    list_select_related = ("rule", "contact")
    readonly_fields = (
        "rule",
        "rule_version",
        "contact",
        "occurrence_key",
        "fired_at",
        "source",
        "status",
        "error",
        "facts_pretty",
        "outcome_pretty",
        "finished_at",
    )
    exclude = ("facts", "outcome", "batch")
    actions = ("retry_failed",)

    @admin.display(description="error")
    def error_short(self, obj: TriggerFiring) -> str:
        return obj.error[:120]

    @admin.display(description="facts that matched")
    def facts_pretty(self, obj: TriggerFiring) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(obj.facts, indent=2, ensure_ascii=False))

    @admin.display(description="outcome")
    def outcome_pretty(self, obj: TriggerFiring) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(obj.outcome, indent=2, ensure_ascii=False))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: TriggerFiring | None = None) -> bool:
        return False

    @admin.action(description="Run the actions of the selected failed firings again")
    def retry_failed(
        self, request: HttpRequest, queryset: QuerySet[TriggerFiring]
    ) -> HttpResponseRedirect | None:
        done = 0
        for firing in queryset.filter(status=TriggerFiring.Status.FAILED):
            firing = firing_retry(firing=firing)
            done += firing.status == TriggerFiring.Status.DONE
        self.message_user(request, f"{done} firing(s) now done.")
        return None
