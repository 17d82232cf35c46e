"""Campaigns in admin: templates validated on save and previewed for any contact, campaigns
with their variants, live progress and pause/resume/cancel, and read-only deliveries,
responses and caps.

Everything shown that a contact or a provider could have written (names, addresses, webhook
fields) goes through format_html or the admin's own escaping; previews render a message's
HTML inside a sandboxed iframe, never into the admin page itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from campaigns.admin_results import AB_FIELDS, AB_FIELDSET, results_urls
from campaigns.channels.sms import sms_segments
from campaigns.models import (
    Campaign,
    Delivery,
    FrequencyCap,
    MessageTemplate,
    Response,
    Variant,
)
from campaigns.rendering import RenderError, render_message, template_errors
from core.admin import ReadOnlyModelAdmin, row_for_url
from crm.models import Contact

# --- Message templates -----------------------------------------------------------------------

TEMPLATE_FIELDS = ("subject", "preheader", "html_body", "text_body", "sms_body")


class MessageTemplateForm(forms.ModelForm[MessageTemplate]):
    class Meta:
        model = MessageTemplate
        fields = ("name", "channel", *TEMPLATE_FIELDS)

    def clean(self) -> dict[str, Any]:
        """Render every field for sample contacts; each problem goes under its own field."""
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        candidate = MessageTemplate(
            channel=cleaned.get("channel", ""),
            **{name: cleaned.get(name) or "" for name in TEMPLATE_FIELDS},
        )
        for field, problems in template_errors(candidate).items():
            for problem in problems:
                self.add_error(field, problem)
        return cleaned


# The preview shows the email in an iframe (srcdoc, sandboxed: no script, no form, no
# same-origin access), and such a frame obeys its page's Content-Security-Policy: emails are
# styled inline and show images from anywhere, so this page alone allows both.
EMAIL_PREVIEW_CSP = {"style-src": [UNSAFE_INLINE], "img-src": ["https:"]}


def segments_text(body: str) -> str:
    encoding, units, segments = sms_segments(body)
    noun = "segment" if segments == 1 else "segments"
    return f"{encoding}, {units} characters, {segments} {noun}"


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin[MessageTemplate]):
    form = MessageTemplateForm
    change_form_template = "campaigns/admin/messagetemplate/change_form.html"
    list_display = ("name", "channel", "sms_length", "updated_at")
    list_filter = ("channel",)
    search_fields = ("name", "subject")
    readonly_fields = ("sms_length",)
    fieldsets = (
        (None, {"fields": ("name", "channel")}),
        (_("Email"), {"fields": ("subject", "preheader", "html_body", "text_body")}),
        (_("SMS"), {"fields": ("sms_body", "sms_length")}),
    )

    @admin.display(description=_("SMS length"))
    def sms_length(self, obj: MessageTemplate) -> str:
        if not obj.sms_body:
            return "—"
        return f"{segments_text(obj.sms_body)} (before personalisation)"

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:object_id>/preview/",
                # django-csp types a view as taking the request alone.
                csp_update(EMAIL_PREVIEW_CSP)(
                    self.admin_site.admin_view(self.preview_view)  # type: ignore[arg-type]
                ),
                name="campaigns_messagetemplate_preview",
            ),
        ]
        return own + super().get_urls()

    def preview_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The message as one chosen contact would get it (by id or email; the newest
        contact when none is chosen)."""
        template = get_object_or_404(MessageTemplate, pk=object_id)
        if not self.has_view_permission(request, template):
            raise PermissionDenied
        wanted = (request.GET.get("contact") or "").strip()
        contact = _contact_lookup(wanted)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": format_html("Preview of {}", template.name),
            "opts": self.model._meta,
            "original": template,
            "wanted": wanted,
            "contact": contact,
            "not_found": bool(wanted) and contact is None,
        }
        if contact is not None:
            campaign = Campaign(name="Preview", slug="preview", channel=template.channel)
            try:
                # preview=True: placeholder links, never the contact's signed ones (with those
                # a marketer could unsubscribe or re-subscribe them as if it were them).
                rendered = render_message(
                    template=template, contact=contact, campaign=campaign, preview=True
                )
            except RenderError as exc:
                context["error"] = str(exc)
            else:
                context["rendered"] = rendered
                if rendered.sms_body:
                    context["sms_length"] = segments_text(rendered.sms_body)
        return TemplateResponse(request, "campaigns/admin/messagetemplate/preview.html", context)


def _contact_lookup(wanted: str) -> Contact | None:
    contacts = Contact.objects.filter(is_erased=False)
    if not wanted:
        return contacts.order_by("-id").first()
    if wanted.isdigit():
        return contacts.filter(pk=int(wanted)).first()
    return contacts.filter(email_key=wanted.lower()).first()


# --- Campaigns -------------------------------------------------------------------------------


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


ProgressRow = tuple[str, str, int]


def campaign_progress(campaign: Campaign) -> list[ProgressRow]:
    """(status, reason, count) for one campaign: one GROUP BY over its deliveries."""
    rows = (
        Delivery.objects.filter(campaign=campaign)
        .order_by()
        .values_list("status", "reason")
        .annotate(n=Count("id"))
    )
    return [(status, reason, n) for status, reason, n in rows]


def progress_html(campaign: Campaign) -> SafeString:
    rows = campaign_progress(campaign)
    statuses: dict[str, str] = {value: str(label) for value, label in Delivery.Status.choices}
    reasons: dict[str, str] = {value: str(label) for value, label in Delivery.Reason.choices}
    totals: dict[str, int] = {}
    held: list[tuple[str, str, int]] = []
    for status, reason, n in rows:
        totals[status] = totals.get(status, 0) + n
        if reason and status in {Delivery.Status.SKIPPED, Delivery.Status.DEFERRED}:
            held.append((statuses.get(status, status), reasons.get(reason, reason), n))
    total = sum(totals.values())
    held.sort(key=lambda row: (-row[2], row[0], row[1]))
    by_status = format_html_join(
        "",
        '<tr><th scope="row">{}</th><td class="progress-{}">{}</td></tr>',
        ((statuses[s], s, totals.get(s, 0)) for s in statuses if totals.get(s)),
    )
    by_reason = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
        held,
    )
    held_table = (
        format_html(
            '<table class="campaign-held"><caption>{}</caption><thead><tr><th>{}</th><th>{}</th>'
            "<th>{}</th></tr></thead><tbody>{}</tbody></table>",
            _("Held back, by reason"),
            _("status"),
            _("reason"),
            _("deliveries"),
            by_reason,
        )
        if held
        else ""
    )
    return format_html(
        '<div class="campaign-progress" data-status="{}"><p>{}: <strong>{}</strong> · {}</p>'
        '<table class="campaign-status"><tbody>{}</tbody></table>{}</div>',
        campaign.status,
        _("Deliveries"),
        total,
        campaign.get_status_display(),
        by_status,
        held_table,
    )


LIVE_STATUSES = {Campaign.Status.SENDING, Campaign.Status.SCHEDULED}
ACTIONS: dict[str, tuple[str, set[str]]] = {
    # action: (service name in campaigns.services.state, statuses it applies to)
    "pause": ("campaign_pause", {Campaign.Status.SCHEDULED, Campaign.Status.SENDING}),
    "resume": ("campaign_resume", {Campaign.Status.PAUSED}),
    "cancel": (
        "campaign_cancel",
        {
            Campaign.Status.DRAFT,
            Campaign.Status.SCHEDULED,
            Campaign.Status.SENDING,
            Campaign.Status.PAUSED,
        },
    ),
}


def _dispatch_service(name: str) -> Callable[..., Any]:
    # Imported when used: the dispatch pipeline is a separate module that imports this app's
    # channels and rendering, so a top-level import here would be circular.
    from campaigns.services import state

    service: Callable[..., Any] = getattr(state, name)
    return service


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin[Campaign]):
    form = CampaignForm
    change_form_template = "campaigns/admin/campaign/change_form.html"
    inlines = (VariantInline,)
    list_display = ("name", "channel", "kind", "status", "scheduled_at", "audience")
    list_filter = ("status", "channel", "kind")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("exclusion_segments",)
    list_select_related = ("audience",)
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
        AB_FIELDSET,
    )

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
        service_name, applies_to = ACTIONS[action]
        service = _dispatch_service(service_name)
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


# --- Read-only records -----------------------------------------------------------------------


def _contact_link(contact: Contact | None) -> SafeString | str:
    if contact is None:
        return "—"
    return format_html(
        '<a href="{}">{}</a>', reverse("admin:crm_contact_change", args=[contact.pk]), contact
    )


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyModelAdmin[Delivery]):
    list_display = (
        "id",
        "campaign",
        "contact_link",
        "channel",
        "status",
        "reason",
        "attempts",
        "sent_at",
    )
    list_filter = ("status", "reason", "channel", "campaign")
    list_select_related = ("campaign", "contact")
    raw_id_fields = ("contact",)
    search_fields = ("=id", "to_address", "provider_message_id")
    show_full_result_count = False
    ordering = ("-id",)

    @admin.display(description=_("contact"))
    def contact_link(self, obj: Delivery) -> SafeString | str:
        return _contact_link(obj.contact)


@admin.register(Response)
class ResponseAdmin(ReadOnlyModelAdmin[Response]):
    list_display = ("id", "kind", "provider", "campaign", "delivery_id", "short_url", "occurred_at")
    list_filter = ("kind", "provider", "campaign")
    list_select_related = ("campaign",)
    raw_id_fields = ("contact", "delivery")
    search_fields = ("=delivery__id", "provider_event_id")
    show_full_result_count = False
    ordering = ("-id",)
    exclude = ("payload",)
    readonly_fields = ("payload_pretty",)

    class Media:
        css = {"all": ("campaigns/admin.css",)}

    @admin.display(description=_("URL"))
    def short_url(self, obj: Response) -> str:
        # Returned as a plain str: the admin escapes it like every other value.
        return obj.url[:80] + ("…" if len(obj.url) > 80 else "")

    @admin.display(description=_("provider event"))
    def payload_pretty(self, obj: Response) -> SafeString:
        text = json.dumps(obj.payload, indent=2, ensure_ascii=False, sort_keys=True)
        return format_html('<pre class="payload-pretty">{}</pre>', text)


@admin.register(FrequencyCap)
class FrequencyCapAdmin(admin.ModelAdmin[FrequencyCap]):
    """Caps change what every campaign may send: superusers edit them, marketers read."""

    list_display = ("channel", "max_messages", "days", "is_active")
    list_filter = ("channel", "is_active")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)
