"""A campaign sent to a static list instead of a segment, and the rule that a campaign has one
audience."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign, MessageTemplate, Variant
from campaigns.services.audience import audience_chunks
from campaigns.services.launch import campaign_launch
from crm.models import Contact
from segments.models import StaticList, StaticListMember
from tests.campaigns.dispatch_helpers import (
    deliveries,
    emails_to,
    grant,
    segment_of,
    tasks_run_inline,
    use_postmark,
)
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

CAMPAIGN_ADD = reverse("admin:campaigns_campaign_add")


def list_of(contacts: list[Contact], *, slug: str = "vip-callback") -> StaticList:
    static_list = StaticList.objects.create(name=slug.replace("-", " "), slug=slug)
    StaticListMember.objects.bulk_create(
        StaticListMember(static_list=static_list, contact=contact) for contact in contacts
    )
    return static_list


def broadcast_to(static_list: StaticList, **fields: Any) -> Campaign:
    campaign = Campaign.objects.create(
        name="VIP preview",
        slug="vip-preview",
        channel="email",
        kind=Campaign.Kind.BROADCAST,
        status=Campaign.Status.SENDING,
        audience_list=static_list,
        **fields,
    )
    template = MessageTemplate.objects.create(
        name="VIP", channel="email", subject="Hello", html_body="<p>New mugs are in.</p>"
    )
    Variant.objects.create(campaign=campaign, name="A", template=template)
    return campaign


def test_a_broadcast_to_a_static_list_reaches_its_consenting_members_and_no_one_else(
    settings: Any, fake_provider: Any, django_capture_on_commit_callbacks: Any
) -> None:
    use_postmark(settings, fake_provider.url, timeout=1)
    ada = ContactFactory.create(email="ada@example.com")
    no_consent = ContactFactory.create(email="nope@example.com")
    erased = ContactFactory.create(email="erased@example.com", is_erased=True)
    excluded = ContactFactory.create(email="excluded@example.com")
    outsider = ContactFactory.create(email="outsider@example.com")
    for contact in (ada, erased, excluded, outsider):
        grant(contact)
    campaign = broadcast_to(list_of([ada, no_consent, erased, excluded]))
    campaign.exclusion_segments.add(segment_of([excluded]))

    with tasks_run_inline(), django_capture_on_commit_callbacks(execute=True):
        campaign_launch(campaign=campaign)

    assert emails_to(fake_provider) == ["ada@example.com"]
    assert set(deliveries(campaign)) == {ada.pk, no_consent.pk}


def test_the_audience_of_a_static_list_is_read_in_id_order_chunks() -> None:
    members = [ContactFactory.create() for _ in range(5)]
    campaign = broadcast_to(list_of(members))

    chunks = list(audience_chunks(campaign=campaign, chunk_size=2))

    assert [[contact_id for contact_id, _ in chunk] for chunk in chunks] == [
        [members[0].pk, members[1].pk],
        [members[2].pk, members[3].pk],
        [members[4].pk],
    ]


def test_a_campaign_with_a_segment_and_a_static_list_is_refused() -> None:
    campaign = broadcast_to(list_of([]), audience=segment_of([]))

    with pytest.raises(ValidationError) as refused:
        campaign.full_clean()

    assert refused.value.message_dict["audience_list"] == [
        "Choose a segment or a static list as the audience, not both: the campaign is sent to "
        "one of them."
    ]


@pytest.mark.parametrize("kind", [Campaign.Kind.BROADCAST, Campaign.Kind.RECURRING])
def test_a_scheduled_campaign_without_an_audience_is_refused(kind: str) -> None:
    campaign = Campaign(
        name="Spring", slug="spring", channel="email", kind=kind, status="scheduled"
    )

    with pytest.raises(ValidationError) as refused:
        campaign.full_clean()

    assert refused.value.message_dict["audience"] == [
        f"A {kind} campaign needs an audience before it leaves draft: choose a segment or a "
        "static list."
    ]


@pytest.mark.parametrize(
    ("kind", "status"),
    [(Campaign.Kind.BROADCAST, "draft"), (Campaign.Kind.TRIGGERED, "scheduled")],
)
def test_a_draft_or_a_triggered_campaign_may_have_no_audience(kind: str, status: str) -> None:
    campaign = Campaign(name="Spring", slug="spring", channel="email", kind=kind, status=status)

    campaign.full_clean()


def test_the_campaign_form_offers_static_lists_and_refuses_both_audiences(
    marketer_client: Client,
) -> None:
    static_list = list_of([], slug="vip-callback")
    segment = segment_of([])
    template = MessageTemplate.objects.create(
        name="t", channel="email", subject="s", html_body="<p>x</p>"
    )

    page = marketer_client.get(CAMPAIGN_ADD).content.decode()
    response = marketer_client.post(
        CAMPAIGN_ADD,
        {
            "name": "Spring sale",
            "slug": "spring-sale",
            "channel": "email",
            "kind": "broadcast",
            "status": "draft",
            "audience": str(segment.pk),
            "audience_list": str(static_list.pk),
            "holdout_percent": "0",
            "purpose": "marketing",
            "priority": "5",
            "goal_event": "order_completed",
            "attribution_window_days": "5",
            "test_share": "100",
            "winner_metric": "conversion",
            "winner_confidence": "0.95",
            "attribution": "last_touch",
            "variants-TOTAL_FORMS": "1",
            "variants-INITIAL_FORMS": "0",
            "variants-MIN_NUM_FORMS": "1",
            "variants-MAX_NUM_FORMS": "1000",
            "variants-0-name": "A",
            "variants-0-template": str(template.pk),
            "variants-0-weight": "1",
        },
    )

    assert f'<option value="{static_list.pk}">vip callback</option>' in page
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["audience_list"] == [
        "Choose a segment or a static list as the audience, not both: the campaign is sent to "
        "one of them."
    ]
    assert not Campaign.objects.exists()
