"""Campaigns: what is sent (templates, variants), to whom and when (campaigns), and what
happened (deliveries, responses)."""

from campaigns.models.abtest import ABDecision
from campaigns.models.campaigns import PLANNED_POWER, Campaign, Variant
from campaigns.models.deliveries import Delivery, Response, TrackingHit
from campaigns.models.limits import FrequencyCap, ThrottleBucket
from campaigns.models.templates import MessageTemplate

__all__ = [
    "PLANNED_POWER",
    "ABDecision",
    "Campaign",
    "Delivery",
    "FrequencyCap",
    "MessageTemplate",
    "Response",
    "ThrottleBucket",
    "TrackingHit",
    "Variant",
]
