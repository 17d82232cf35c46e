"""Campaigns in admin: the form with its variants, live progress, pause/resume/cancel from
the change page or the changelist, and the A/B results pages (campaigns/admin/results.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from campaigns.admin.progress import progress_html
from campaigns.admin.results import AB_FIELDS, AB_FIELDSET, results_urls
from campaigns.models import Campaign, Variant
from campaigns.services import state
from core.admin import row_for_url
from segments.models import Segment, StaticList


class VariantFormSet(BaseInlineFormSet[Variant, Campaign, forms.ModelForm[Variant]]):
    def clean(self) -> None:
        super().clean()
        channel = self.instance.channel
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or form.cleaned_data.get("DELETE"):
                continue
            template = form.cleaned_data.get("template")
            if template is not None and channel and template.channel != channel:
                form.add_error(
                    "template",
                    f"{template.name} is an {template.channel} template; this campaign sends "
                    f"{channel}.",
                )


class VariantInline(admin.TabularInline[Variant, Campaign]):
    model = Variant
    formset = VariantFormSet
    fields = ("name", "template", "weight")
    extra = 0
    min_num = 1
    autocomplete_fields = ("template",)


class CampaignForm(forms.ModelForm[Campaign]):
    class Meta:
        model = Campaign
        fields = (
            "name",
            "slug",
            "channel",
            "kind",
            "status",
            "audience",
            "audience_list",
            "exclusion_segments",
            "holdout_percent",
            "scheduled_at",
            "send_at_local_time",
            "crontab",
            "from_email",
            "reply_to",
            "sms_from",
            "messaging_service_sid",
            "purpose",
            "is_transactional",
            "priority",
            "defer_when_capped",
            "goal_event",
            "attribution_window_days",
            "track_opens_clicks",
            "utm_parameters",
            *AB_FIELDS,
        )

    def clean_status(self) -> str:
        status: str = self.cleaned_data["status"]
        editable = {Campaign.Status.DRAFT, Campaign.Status.SCHEDULED}
        before = self.instance.status if self.instance.pk else Campaign.Status.DRAFT
        if status != before and not (status in editable and before in editable):
            raise ValidationError(
                "Only draft and scheduled can be chosen here; use the Pause, Resume and Cancel "
                "buttons for a campaign that is sending."
            )
        return status


LIVE_STATUSES = {Campaign.Status.SENDING, Campaign.Status.SCHEDULED}
CampaignService = Callable[..., object]
ACTIONS: dict[str, tuple[CampaignService, set[str]]] = {
    # action: (its service, statuses it applies to)
    "pause": (state.campaign_pause, {Campaign.Status.SCHEDULED, Campaign.Status.SENDING}),
    "resume": (state.campaign_resume, {Campaign.Status.PAUSED}),
    "cancel": (
        state.campaign_cancel,
        {
            Campaign.Status.DRAFT,
            Campaign.Status.SCHEDULED,
            Campaign.Status.SENDING,
            Campaign.Status.PAUSED,
        },
    ),
}


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin[Campaign]):
    form = CampaignForm
    change_form_template = "campaigns/admin/campaign/change_form.html"
    inlines = (VariantInline,)
    list_display = ("name", "channel", "kind", "status", "scheduled_at", "audience_shown")
    list_filter = ("status", "channel", "kind")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("exclusion_segments",)
    list_select_related = ("audience", "audience_list")
    readonly_fields = ("progress", "started_at", "finished_at")
    actions = ("pause_selected", "resume_selected", "cancel_selected")
    fieldsets = (
        (None, {"fields": ("name", "slug", "channel", "kind", "status", "progress")}),
        (
            _("Audience"),
            {"fields": ("audience", "audience_list", "exclusion_segments", "holdout_percent")},
        ),
        (
            _("Schedule"),
            {
                "fields": (
                    "scheduled_at",
                    "send_at_local_time",
                    "crontab",
                    "started_at",
                    "finished_at",
                )
            },
        ),
        (
            _("Sender"),
            {"fields": ("from_email", "reply_to", "sms_from", "messaging_service_sid")},
        ),
        (
            _("Rules"),
            {"fields": ("purpose", "is_transactional", "priority", "defer_when_capped")},
        ),
        (_("Goal"), {"fields": ("goal_event", "attribution_window_days")}),
        (_("Tracking"), {"fields": ("track_opens_clicks", "utm_parameters")}),
        AB_FIELDSET,
    )

    @admin.display(
        description=_("audience"), ordering=Coalesce("audience__name", "audience_list__name")
    )
    def audience_shown(self, obj: Campaign) -> Segment | StaticList | None:
        """A campaign has one audience, a segment or a static list; the other is empty."""
        return obj.audience or obj.audience_list

    @admin.display(description=_("progress"))
    def progress(self, obj: Campaign) -> SafeString | str:
        if obj.pk is None:
            return "—"
        return progress_html(obj)

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:object_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="campaigns_campaign_progress",
            ),
            path(
                "<int:object_id>/control/<str:action>/",
                self.admin_site.admin_view(require_POST(self.action_view)),
                name="campaigns_campaign_action",
            ),
            *results_urls(self),
        ]
        return own + super().get_urls()

    def progress_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The progress block alone, fetched every few seconds while the campaign sends."""
        campaign = get_object_or_404(Campaign, pk=object_id)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        response = HttpResponse(progress_html(campaign))
        response["Cache-Control"] = "no-store"
        return response

    def action_view(self, request: HttpRequest, object_id: int, action: str) -> HttpResponse:
        if action not in ACTIONS:
            raise Http404
        campaign = get_object_or_404(Campaign, pk=object_id)
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        self._apply(request, action, [campaign])
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    def _apply(self, request: HttpRequest, action: str, campaigns: list[Campaign]) -> None:
        service, applies_to = ACTIONS[action]
        for campaign in campaigns:
            if campaign.status not in applies_to:
                self.message_user(
                    request,
                    format_html(
                        "{} is {}: nothing to {}.",
                        campaign.name,
                        campaign.get_status_display(),
                        action,
                    ),
                    messages.WARNING,
                )
                continue
            service(campaign=campaign)
            campaign.refresh_from_db(fields=["status"])
            self.message_user(
                request,
                format_html("{}: {}.", campaign.name, campaign.get_status_display()),
                messages.SUCCESS,
            )

    @admin.action(description=_("Pause the selected campaigns"), permissions=["change"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._apply(request, "pause", list(queryset))

    @admin.action(description=_("Resume the selected campaigns"), permissions=["change"])
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._apply(request, "resume", list(queryset))

    @admin.action(description=_("Cancel the selected campaigns"), permissions=["change"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._apply(request, "cancel", list(queryset))

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        campaign = row_for_url(Campaign.objects.all(), object_id)
        context: dict[str, Any] = {}
        if campaign is not None:
            context["progress_live"] = campaign.status in LIVE_STATUSES
            context["progress_url"] = reverse(
                "admin:campaigns_campaign_progress", args=[campaign.pk]
            )
            if self.has_change_permission(request, campaign):
                context["campaign_actions"] = [
                    (
                        action,
                        reverse("admin:campaigns_campaign_action", args=[campaign.pk, action]),
                    )
                    for action, (_service, statuses) in ACTIONS.items()
                    if campaign.status in statuses
                ]
        return super().change_view(
            request, object_id, form_url, {**context, **(extra_context or {})}
        )
