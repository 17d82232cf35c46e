"""Campaigns in admin: templates validated on save and previewed for any contact, campaigns
with their variants, live progress and pause/resume/cancel, A/B results, and read-only
deliveries, responses and decisions. Each module registers its own models.

Everything shown that a contact or a provider could have written (names, addresses, webhook
fields) goes through format_html or the admin's own escaping; previews render a message's
HTML inside a sandboxed iframe, never into the admin page itself."""

from campaigns.admin.campaigns import CampaignAdmin, CampaignForm
from campaigns.admin.caps import FrequencyCapAdmin
from campaigns.admin.deliveries import DeliveryAdmin, ResponseAdmin
from campaigns.admin.progress import campaign_progress, progress_html
from campaigns.admin.results import ABDecisionAdmin
from campaigns.admin.templates import MessageTemplateAdmin, MessageTemplateForm

__all__ = [
    "ABDecisionAdmin",
    "CampaignAdmin",
    "CampaignForm",
    "DeliveryAdmin",
    "FrequencyCapAdmin",
    "MessageTemplateAdmin",
    "MessageTemplateForm",
    "ResponseAdmin",
    "campaign_progress",
    "progress_html",
]
