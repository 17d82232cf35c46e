"""Rendering a message for one contact: each field in the restricted engine, the marketing
footer and preheader, and the size limits of what will be sent."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape as html_escape
from typing import Any

from django.conf import settings
from django.template import Context, TemplateSyntaxError, VariableDoesNotExist
from django.template.loader import render_to_string

from campaigns.channels.sms import sms_with_opt_out
from campaigns.models import Campaign, MessageTemplate
from campaigns.rendering.compiling import compile_template
from campaigns.rendering.context import message_context, recent_context_for
from campaigns.rendering.engine import RenderLimitError, render_budget
from campaigns.rendering.links import MissingValueError, missing_values_held
from campaigns.rendering.text import html_to_text
from campaigns.tracking.rewrite import LinkPolicy, TrackedLink, message_rewrite, utm_parameters
from crm.models import Channel, Contact

FIELD_LABELS = {
    "subject": "subject",
    "preheader": "preheader",
    "html_body": "HTML body",
    "text_body": "text body",
    "sms_body": "SMS body",
}


class RenderError(Exception):
    """A template field that cannot be compiled or rendered; the message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{FIELD_LABELS.get(field, field)}: {problem}")


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    preheader: str
    html: str
    text: str
    sms_body: str
    # The tracked links, by the index their /t/c/ token names: stored on the delivery
    # (campaigns.tracking.recording.tracked_links_store) before the message leaves.
    links: tuple[TrackedLink, ...] = ()


# A django.core.signing value: payload (".": compressed), timestamp, SHA-256 signature.
_SIGNED_TOKEN = re.compile(r"\.?[A-Za-z0-9_-]+:[A-Za-z0-9]+:[A-Za-z0-9_-]{43}")


def _redacted(message: str, context: Mapping[str, Any]) -> str:
    """An error message fit to show a marketer: no customer link, and nothing shaped like
    a signed token (a filter may have cut a link apart before failing on it)."""
    for key, label in (
        ("unsubscribe_url", "[unsubscribe link]"),
        ("preferences_url", "[preferences link]"),
    ):
        link = context.get(key)
        if isinstance(link, str) and link:
            message = message.replace(link, label)
    return _SIGNED_TOKEN.sub("[token]", message)


def render_field(
    field: str, source: str, context: dict[str, Any], *, html: bool, hold_missing: bool = True
) -> str:
    if not source:
        return ""
    try:
        template = compile_template(source)
    except TemplateSyntaxError as exc:
        raise RenderError(field, str(exc)) from exc
    try:
        with render_budget() as budget, missing_values_held(hold_missing):
            output = template.render(Context(context, autoescape=html))
            if len(output) > budget.max_chars:
                raise budget.too_long()
    except (RenderLimitError, MissingValueError) as exc:
        raise RenderError(field, str(exc)) from exc
    except VariableDoesNotExist as exc:
        # Django's message lists the object it looked in, up to the whole context (links
        # with signed tokens included): name the missing key alone.
        missing = exc.params[0] if exc.params else "?"
        raise RenderError(field, f"{str(missing)!r} is not defined here") from exc
    except Exception as exc:  # a filter can fail on odd data; name the field, keep the cause
        problem = _redacted(f"{type(exc).__name__}: {exc}", context)
        raise RenderError(field, problem) from exc
    # Template.render marks its output safe; a message is data to whoever shows it next (the
    # admin preview puts it in an attribute), so hand back a plain str that will be escaped.
    return "".join([output])


def _one_line(value: str) -> str:
    # Subjects go into a header: a newline there is an error (or an injection).
    return re.sub(r"\s+", " ", value).strip()


def _with_preheader(html: str, preheader: str) -> str:
    if not preheader:
        return html
    span = (
        '<span style="display:none !important;visibility:hidden;opacity:0;color:transparent;'
        'height:0;width:0;overflow:hidden;mso-hide:all;font-size:1px;line-height:1px">'
        f"{html_escape(preheader)}</span>"
    )
    match = re.search(r"<body[^>]*>", html, re.IGNORECASE)
    if match:
        return html[: match.end()] + span + html[match.end() :]
    return span + html


def _append_html_footer(html: str, footer: str) -> str:
    match = re.search(r"</body\s*>", html, re.IGNORECASE)
    if match:
        return html[: match.start()] + footer + html[match.start() :]
    return html + footer


def render_message(
    *,
    template: MessageTemplate,
    contact: Contact,
    campaign: Campaign,
    delivery_id: int | None = None,
    recent: dict[str, Any] | None = None,
    preview: bool = False,
    variant_name: str = "",
) -> RenderedMessage:
    """Render what the campaign's channel needs (email: subject, preheader, HTML, text; SMS:
    the SMS body). A marketing email gets the standard footer (unsubscribe and preference
    links, postal address) in each body that does not use ``{{ unsubscribe_url }}`` itself,
    and the preheader as a hidden span at the top of the HTML. `preview=True` puts inert
    placeholders where the customer's signed links go (for admin previews). A marketing
    email rendered for a delivery has its links tracked (docs/tracking.md): the targets come
    back in `links`, to be stored before sending. Raises
    RenderError, also for a message over RENDER_MAX_EMAIL_BYTES or RENDER_MAX_SMS_CHARS."""
    if recent is None:
        recent = recent_context_for([contact.pk]).get(contact.pk, {}) if contact.pk else {}
    context = message_context(
        contact=contact,
        campaign=campaign,
        delivery_id=delivery_id,
        recent=recent,
        preview=preview,
    )

    if campaign.channel == Channel.SMS:
        sms_body = render_field("sms_body", template.sms_body, context, html=False).strip()
        _check_sms_length(sms_body, campaign)
        return RenderedMessage(subject="", preheader="", html="", text="", sms_body=sms_body)

    subject = _one_line(render_field("subject", template.subject, context, html=False))
    preheader = _one_line(render_field("preheader", template.preheader, context, html=False))
    html = render_field("html_body", template.html_body, context, html=True)
    if template.text_body:
        text = render_field("text_body", template.text_body, context, html=False).strip()
        text_has_link = "unsubscribe_url" in template.text_body
    else:
        text = html_to_text(html)
        text_has_link = "unsubscribe_url" in template.html_body

    if not campaign.is_transactional:
        footer_context = {
            "unsubscribe_url": context["unsubscribe_url"],
            "preferences_url": context["preferences_url"],
            "sender": context["sender"],
        }
        if html and "unsubscribe_url" not in template.html_body:
            html = _append_html_footer(
                html, render_to_string("campaigns/email/footer.html", footer_context)
            )
        if not text_has_link:
            footer = render_to_string("campaigns/email/footer.txt", footer_context).strip()
            text = f"{text}\n\n{footer}" if text else footer
    links: tuple[TrackedLink, ...] = ()
    if not campaign.is_transactional and not preview:
        tracked = message_rewrite(
            html=html,
            text=text,
            policy=_link_policy(campaign, delivery_id, variant_name, context),
        )
        html, text, links = tracked.html, tracked.text, tuple(tracked.links)
    if html:
        html = _with_preheader(html, preheader)
    size = sum(len(part.encode()) for part in (subject, preheader, html, text))
    if size > settings.RENDER_MAX_EMAIL_BYTES:
        raise RenderError(
            "html_body" if html else "text_body",
            f"the rendered email is {size} bytes, over the limit of "
            f"{settings.RENDER_MAX_EMAIL_BYTES} bytes (RENDER_MAX_EMAIL_BYTES)",
        )
    return RenderedMessage(
        subject=subject, preheader=preheader, html=html, text=text, sms_body="", links=links
    )


def _link_policy(
    campaign: Campaign, delivery_id: int | None, variant_name: str, context: dict[str, Any]
) -> LinkPolicy:
    utm = (
        utm_parameters(campaign_slug=campaign.slug, variant_name=variant_name)
        if campaign.utm_parameters
        else []
    )
    return LinkPolicy(
        delivery_id=delivery_id,
        track=campaign.track_opens_clicks and delivery_id is not None,
        utm=utm,
        keep={str(context["unsubscribe_url"]), str(context["preferences_url"])},
    )


def _check_sms_length(body: str, campaign: Campaign) -> None:
    """Twilio refuses a body over 1,600 characters; count what will be sent, the opt-out
    sentence campaigns.channels.sms.build_sms appends to a marketing SMS included."""
    sent = sms_with_opt_out(body, transactional=campaign.is_transactional)
    length = len(sent)
    with_opt_out = sent != body.strip()
    if length > settings.RENDER_MAX_SMS_CHARS:
        extra = " with the opt-out text" if with_opt_out else ""
        raise RenderError(
            "sms_body",
            f"the SMS would be {length} characters{extra}, over the limit of "
            f"{settings.RENDER_MAX_SMS_CHARS} (RENDER_MAX_SMS_CHARS)",
        )
