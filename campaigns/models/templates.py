"""What a variant sends: the subject, preheader and bodies of one message."""

from __future__ import annotations

from django.db import models
from django.utils import timezone as dj_timezone

from crm.models import Channel


class MessageTemplate(models.Model):
    """The content of one variant. Email uses subject, preheader and the bodies (text is
    derived from HTML when empty); SMS uses sms_body. Bodies are Django templates rendered in
    a restricted engine (campaigns/rendering/) with a whitelisted context."""

    name = models.CharField(max_length=200, help_text="e.g. Browse abandonment, version A")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    subject = models.CharField(
        max_length=255,
        blank=True,
        help_text="e.g. Still thinking it over, {{ contact.first_name|default:'there' }}?",
    )
    preheader = models.CharField(
        max_length=255, blank=True, help_text="The preview line after the subject in the inbox."
    )
    html_body = models.TextField(
        "HTML body",
        blank=True,
        help_text="e.g. <p>Hi {{ contact.first_name|default:'there' }}, you looked at "
        "{{ last_viewed.product_name }}.</p>",
    )
    text_body = models.TextField(
        "text body", blank=True, help_text="Plain text; derived from the HTML when empty."
    )
    sms_body = models.TextField(
        "SMS body",
        blank=True,
        help_text="e.g. Hi {{ contact.first_name|default:'there' }}, 10% off today. "
        "Reply STOP to opt out.",
    )
    created_at = models.DateTimeField(default=dj_timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name
