"""Send a campaign's message to the contact, with an optional fallback campaign for contacts
who lack consent (or an address) for the first campaign's channel: SMS, else email."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from django import forms

from crm.models import Channel, ConsentRecord, Contact
from crm.selectors import consent_current
from triggers.actions.base import ActionError, ActionType, actions

if TYPE_CHECKING:
    from campaigns.models import Campaign
    from triggers.models import TriggerFiring


class SendCampaignOptions(TypedDict):
    """e.g. {"campaign": "win-back-sms", "fallback_campaign": "win-back-email"}"""

    campaign: str  # a campaign's slug
    fallback_campaign: NotRequired[str]


class SendCampaignResult(TypedDict):
    campaign: str  # the slug of the campaign sent
    channel: str  # a crm.models.Channel value
    fallback: bool
    delivery_id: int | None  # None when nothing was delivered (a draft or cancelled campaign)


class CampaignSlugField(forms.SlugField):
    def validate(self, value: Any) -> None:
        from campaigns.models import Campaign

        super().validate(value)
        if value and not Campaign.objects.filter(slug=value).exists():
            raise forms.ValidationError(f"no campaign with the slug {value!r}.")


class SendCampaignForm(forms.Form):
    campaign = CampaignSlugField(help_text="A campaign's slug, e.g. win-back-sms")
    fallback_campaign = CampaignSlugField(
        required=False,
        help_text="Sent instead when the contact can't receive the first one on its channel "
        "(no consent or no address), e.g. win-back-email",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("fallback_campaign") and data.get("fallback_campaign") == data.get("campaign"):
            self.add_error("fallback_campaign", "the fallback must be a different campaign.")
        return data


def _reachable(campaign: Campaign, contact: Contact, consent: dict[tuple[str, str], str]) -> bool:
    address = contact.phone if campaign.channel == Channel.SMS else contact.email
    granted = consent.get((campaign.channel, campaign.purpose)) == ConsentRecord.Status.GRANTED
    return bool(address) and granted


@actions.register
class SendCampaign(ActionType[SendCampaignOptions, SendCampaignResult]):
    id = "send_campaign"
    database_only = True
    label = "send campaign {campaign} (fallback: {fallback_campaign})"
    form = SendCampaignForm

    def options(self, stored: Mapping[str, Any]) -> SendCampaignOptions:
        options = SendCampaignOptions(campaign=stored["campaign"])
        if "fallback_campaign" in stored:
            options["fallback_campaign"] = stored["fallback_campaign"]
        return options

    def describe(self, options: Mapping[str, Any]) -> str:
        text = f"send campaign {options.get('campaign')}"
        if options.get("fallback_campaign"):
            text += f", else {options['fallback_campaign']}"
        return text

    def run(
        self, options: SendCampaignOptions, *, firing: TriggerFiring, contact_id: int
    ) -> SendCampaignResult:
        # Lazily: campaigns' dispatch is a layer below but loads its own heavy imports.
        from campaigns.models import Campaign
        from campaigns.services.launch import campaign_deliver_to_contact

        slugs = [
            options["campaign"],
            *([options["fallback_campaign"]] if options.get("fallback_campaign") else []),
        ]
        found = {c.slug: c for c in Campaign.objects.filter(slug__in=slugs)}
        missing = [slug for slug in slugs if slug not in found]
        if missing:
            raise ActionError(f"campaign {missing[0]!r} no longer exists")
        chosen = found[options["campaign"]]
        used_fallback = False
        if len(slugs) == 2:
            contact = Contact.objects.get(pk=contact_id)
            consent = consent_current([contact_id])[contact_id]
            if not _reachable(chosen, contact, consent):
                # The claim re-checks consent at send time either way; the fallback is only
                # chosen here, so the skip of the first campaign is not recorded twice.
                chosen, used_fallback = found[options["fallback_campaign"]], True
        delivery = campaign_deliver_to_contact(
            campaign=chosen, contact_id=contact_id, occurrence=f"trigger-{firing.pk}"
        )
        return {
            "campaign": chosen.slug,
            "channel": chosen.channel,
            "fallback": used_fallback,
            "delivery_id": delivery.pk if delivery is not None else None,
        }
