"""What a marketer sees of a running journey in admin: the flow diagram with per-step counts
and conversion on the change page (and per version), pause and resume (buttons and list
actions), the dry run, one contact's path (explain), and a contact's enrollments on the
contact page. A mixin for the journey admin, so the editor's JourneyAdmin stays its own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from campaigns.models import Campaign
from core.admin import ReadOnlyPermissions
from crm.admin.contacts import ContactAdmin
from crm.models import Contact
from journeys.dryrun import CAP, contacts_pick, dry_run
from journeys.flow import Flow
from journeys.models import Enrollment, Journey, JourneyVersion
from journeys.reports import JourneyStatus, journey_explain, journey_status, versions_enrolled
from journeys.services import Held, journeys_pause, journeys_resume
from journeys.svg import flow_svg
from segments.models import Segment

if TYPE_CHECKING:
    _Base = admin.ModelAdmin[Journey]
else:
    _Base = object

TEMPLATES = "admin/journeys/insight"


def _percent(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def _campaign_names(steps: Sequence[Any]) -> dict[str, str]:
    slugs = {
        str(step.get(key))
        for step in Flow(steps)
        if step.get("type") == "send"
        for key in ("campaign", "fallback_campaign")
        if step.get(key)
    }
    return dict(Campaign.objects.filter(slug__in=slugs).values_list("slug", "name"))


def status_svg(journey: Journey, status: JourneyStatus, version: JourneyVersion) -> SafeString:
    """The version's diagram with its counts: entered / waiting / done on each step, each
    way out of a branch, wait or split, and conversion at the top."""
    counts = {
        s["id"]: f"entered {s['entered']} · waiting {s['waiting']} · done {s['done']}"
        + (f" · failed {s['failed']}" if s["failed"] else "")
        for s in status["steps"]
    }
    lane_counts = {
        (step_id, key): f"{n} went"
        for step_id, keys in status["paths"].items()
        for key, n in keys.items()
    }
    for step_id, arms in status["splits"].items():
        for arm in arms:
            text = f"{arm['enrolled']} in, {arm['converted']} converted"
            if arm["p_value"] is not None:
                text += f" (p={arm['p_value']:.2f} vs {arm['against']})"
            lane_counts[(step_id, arm["arm"])] = text
    heading = (
        f"v{version.number}: converted {status['converted']} / enrolled {status['enrolled']} "
        f"({_percent(status['converted'], status['enrolled'])})"
    )
    return flow_svg(
        version.steps,
        heading=heading,
        counts=counts,
        lane_counts=lane_counts,
        end_count=f"completed {status['completed']}",
        campaign_names=_campaign_names(version.steps),
    )


class DryRunForm(forms.Form):
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.order_by("name"),
        required=False,
        help_text=f"Its current members enter (the first {CAP:,} by id), e.g. cart-abandoners.",
    )
    contacts = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Or contact ids and email addresses, separated by spaces, commas or lines, "
        "e.g. ada@example.com 42.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("segment") and not (data.get("contacts") or "").strip():
            raise forms.ValidationError("Pick a segment or paste contacts.")
        return data


class JourneyInsightMixin(_Base):
    """Adds the flow section to the change page, its views, and the pause/resume actions."""

    insight_fields = ("insight_controls", "flow_diagram")

    @property
    def media(self) -> forms.Media:
        # A stylesheet, not inline styles: the CSP allows styles from 'self' only.
        return super().media + forms.Media(css={"all": ["journeys/insight.css"]})

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return (*super().get_readonly_fields(request, obj), *self.insight_fields)

    def with_insight(self, fieldsets: Any, obj: Any = None) -> Any:
        """`fieldsets` and, on a saved journey's page, the Flow section after them."""
        fieldsets = list(fieldsets)
        if obj is None:
            return fieldsets
        own = set(self.insight_fields)
        fieldsets = [
            (name, {**opts, "fields": [f for f in opts["fields"] if f not in own]})
            for name, opts in fieldsets
        ]
        return [*fieldsets, ("Flow", {"fields": self.insight_fields})]

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        own = [
            path(
                "<int:object_id>/pause/", wrap(require_POST(self.pause_view)), name="journeys_pause"
            ),
            path(
                "<int:object_id>/resume/",
                wrap(require_POST(self.resume_view)),
                name="journeys_resume",
            ),
            path("<int:object_id>/flow/", wrap(self.flow_view), name="journeys_flow"),
            path("<int:object_id>/dry-run/", wrap(self.dryrun_view), name="journeys_dryrun"),
            path(
                "<int:object_id>/explain/<int:contact_id>/",
                wrap(self.explain_view),
                name="journeys_explain",
            ),
        ]
        return own + super().get_urls()

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if self.has_change_permission(request):
            for func in (JourneyInsightMixin.pause_selected, JourneyInsightMixin.resume_selected):
                name = func.__name__
                description = str(getattr(func, "short_description"))  # noqa: B009
                actions[name] = cast(Any, (func, name, description))
        return actions

    @admin.display(description="pause / resume")
    def insight_controls(self, obj: Journey) -> SafeString:
        held = Enrollment.objects.filter(journey=obj, status=Enrollment.Status.ACTIVE).count()
        versions = versions_enrolled(obj)
        context = {
            "journey": obj,
            "paused": obj.status == Journey.Status.PAUSED,
            "held": held,
            "versions": versions if len(versions) > 1 else [],
        }
        return SafeString(render_to_string(f"{TEMPLATES}/controls.html", context))

    @admin.display(description="flow")
    def flow_diagram(self, obj: Journey) -> SafeString | str:
        version = obj.current_version
        if version is None:
            return "no published version"
        svg = status_svg(obj, journey_status(obj, version=version), version)
        return format_html('<div class="journey-diagram">{}</div>', svg)

    def _journey(self, request: HttpRequest, object_id: int, *, change: bool) -> Journey:
        journey = get_object_or_404(Journey.objects.select_related("current_version"), pk=object_id)
        allowed = (
            self.has_change_permission(request, journey)
            if change
            else self.has_view_permission(request, journey)
        )
        if not allowed:
            raise PermissionDenied
        return journey

    def _change_url(self, journey: Journey) -> str:
        return reverse("admin:journeys_journey_change", args=[journey.pk])

    def _held_message(self, request: HttpRequest, verb: str, held: Held) -> None:
        if not held.journeys:
            self.message_user(request, f"Nothing to {verb}.", messages.WARNING)
            return
        text = f"{held.journeys} journey(s) {verb}d: {held.contacts} contact(s) "
        if verb == "pause":
            text += "held at their steps until resumed."
        else:
            text += f"carry on; {held.due} due now run at once."
        self.message_user(request, text, messages.SUCCESS)

    def pause_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        journey = self._journey(request, object_id, change=True)
        held = journeys_pause(journeys=Journey.objects.filter(pk=journey.pk))
        self._held_message(request, "pause", held)
        return HttpResponseRedirect(self._change_url(journey))

    def resume_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        journey = self._journey(request, object_id, change=True)
        held = journeys_resume(journeys=Journey.objects.filter(pk=journey.pk))
        self._held_message(request, "resume", held)
        return HttpResponseRedirect(self._change_url(journey))

    @admin.action(description="Pause the selected journeys (hold contacts)", permissions=["change"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[Journey]) -> None:
        self._held_message(request, "pause", journeys_pause(journeys=queryset))

    @admin.action(description="Resume the selected journeys", permissions=["change"])
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[Journey]) -> None:
        self._held_message(request, "resume", journeys_resume(journeys=queryset))

    def _page(
        self, request: HttpRequest, journey: Journey, name: str, title: str, **context: Any
    ) -> TemplateResponse:
        base = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": journey,
            "journey": journey,
            "title": title,
            "change_url": self._change_url(journey),
        }
        return TemplateResponse(request, f"{TEMPLATES}/{name}", {**base, **context})

    def flow_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """One version's diagram and counts (the change page shows the current one)."""
        journey = self._journey(request, object_id, change=False)
        number = request.GET.get("version", "")
        version = (
            journey.versions.filter(number=int(number)).first()
            if number.isdigit()
            else journey.current_version
        )
        if version is None:
            return HttpResponseRedirect(self._change_url(journey))
        status = journey_status(journey, version=version)
        return self._page(
            request,
            journey,
            "flow.html",
            f"{journey.name}: flow of v{version.number}",
            svg=status_svg(journey, status, version),
            status=status,
            version=version,
            versions=versions_enrolled(journey),
        )

    def dryrun_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Reads only, so a GET form: the result page can be bookmarked and reloaded."""
        journey = self._journey(request, object_id, change=False)
        form = DryRunForm(request.GET or None)
        context: dict[str, Any] = {"form": form, "cap": CAP}
        version = journey.current_version
        if form.is_valid() and version is not None:
            picked = contacts_pick(
                segment=form.cleaned_data["segment"], text=form.cleaned_data["contacts"]
            )
            result = dry_run(journey, picked.contact_ids, now=timezone.now())
            counts = {step_id: f"would reach: {n}" for step_id, n in result.reached.items()}
            lanes = {key: f"{n} would go" for key, n in result.lanes.items()}
            context.update(
                picked=picked,
                capped=picked.asked > len(picked.contact_ids),
                result=result,
                svg=flow_svg(
                    version.steps,
                    heading=f"v{version.number}: dry run of {result.contacts} contact(s)",
                    counts=counts,
                    lane_counts=lanes,
                    end_count=f"would complete: {result.completed}",
                    campaign_names=_campaign_names(version.steps),
                ),
            )
        return self._page(request, journey, "dryrun.html", f"{journey.name}: dry run", **context)

    def explain_view(self, request: HttpRequest, object_id: int, contact_id: int) -> HttpResponse:
        journey = self._journey(request, object_id, change=False)
        contact = get_object_or_404(Contact, pk=contact_id)
        return self._page(
            request,
            journey,
            "explain.html",
            f"{journey.name}: path of {contact}",
            text="\n".join(journey_explain(journey, contact)),
            contact=contact,
        )


class ContactEnrollmentInline(ReadOnlyPermissions, admin.TabularInline[Enrollment, Contact]):
    """A contact's journeys, on its admin page (crm must not know journeys: added from here)."""

    model = Enrollment
    fk_name = "contact"
    extra = 0
    can_delete = False
    verbose_name_plural = "journeys"
    fields = (
        "journey",
        "version_number",
        "status",
        "step_id",
        "due_at",
        "entered_at",
        "exit_reason",
        "conversion_value",
        "explain",
    )
    readonly_fields = fields
    ordering = ("-entered_at", "-pk")

    class Media:
        css = {"all": ("journeys/insight.css",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Enrollment]:
        return super().get_queryset(request).select_related("journey", "version")

    @admin.display(description="version")
    def version_number(self, obj: Enrollment) -> str:
        return f"v{obj.version.number}"

    @admin.display(description="path")
    def explain(self, obj: Enrollment) -> SafeString:
        url = reverse("admin:journeys_explain", args=[obj.journey_id, obj.contact_id])
        return format_html('<a href="{}">explain</a>', url)


def contact_page_register() -> None:
    """Adds the enrollments inline to the registered contact admin, once."""
    current: tuple[Any, ...] = tuple(ContactAdmin.inlines)
    if ContactEnrollmentInline not in current:
        ContactAdmin.inlines = cast(Any, (*current, ContactEnrollmentInline))
