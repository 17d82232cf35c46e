"""Message templates in admin: every field rendered for sample contacts on save, each
problem under its own field, and a preview for any contact.

The preview renders a message's HTML inside a sandboxed iframe, never into the admin page
itself."""

from __future__ import annotations

from typing import Any

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from campaigns.channels.sms import sms_segments
from campaigns.models import Campaign, MessageTemplate
from campaigns.rendering import RenderError, render_message, template_errors
from crm.models import Contact

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
