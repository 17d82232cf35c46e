"""SMS length in segments as the carrier bills it, and the message built for a delivery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from campaigns.channels.sms import build_sms, get_sms_backend, sms_segments, sms_with_opt_out
from campaigns.models import Campaign, Delivery, MessageTemplate, Variant
from campaigns.rendering import RenderError, render_message
from tests.factories import ContactFactory

# --- Segments ------------------------------------------------------------------------------


def test_160_gsm_characters_fit_one_segment() -> None:
    assert sms_segments("a" * 160) == ("GSM-7", 160, 1)


def test_161_gsm_characters_take_two_segments_of_153() -> None:
    assert sms_segments("a" * 161) == ("GSM-7", 161, 2)
    assert sms_segments("a" * 306) == ("GSM-7", 306, 2)
    assert sms_segments("a" * 307) == ("GSM-7", 307, 3)


def test_gsm_accented_letters_stay_gsm_7() -> None:
    assert sms_segments("Café à Genève, Müller, Niño") == ("GSM-7", 27, 1)


def test_gsm_extension_characters_count_two() -> None:
    assert sms_segments("€5 [sale] {now} ~ ^ | \\") == ("GSM-7", 32, 1)
    assert sms_segments("€" * 80) == ("GSM-7", 160, 1)
    assert sms_segments("€" * 81) == ("GSM-7", 162, 2)


def test_an_extension_character_never_splits_across_segments() -> None:
    # 152 plain characters then "€": 154 septets; the escape pair moves whole to part two.
    assert sms_segments("a" * 152 + "€" + "a" * 8) == ("GSM-7", 162, 2)
    assert sms_segments("a" * 152 + "€" + "a" * 152) == ("GSM-7", 306, 3)


def test_one_non_gsm_character_makes_the_message_ucs_2() -> None:
    assert sms_segments("Hi Ćiro") == ("UCS-2", 7, 1)
    assert sms_segments("你" * 70) == ("UCS-2", 70, 1)


def test_71_ucs_2_characters_take_two_segments_of_67() -> None:
    assert sms_segments("你" * 71) == ("UCS-2", 71, 2)
    assert sms_segments("你" * 134) == ("UCS-2", 134, 2)
    assert sms_segments("你" * 135) == ("UCS-2", 135, 3)


def test_an_emoji_counts_two_ucs_2_units() -> None:
    assert sms_segments("😀" * 35) == ("UCS-2", 70, 1)
    assert sms_segments("😀" * 36) == ("UCS-2", 72, 2)


def test_an_empty_body_has_no_segment() -> None:
    assert sms_segments("") == ("GSM-7", 0, 0)


# --- Building ------------------------------------------------------------------------------


@pytest.fixture
def delivery() -> Delivery:
    contact = ContactFactory.create(first_name="Ada", phone="+14155550100")
    template = MessageTemplate.objects.create(
        name="s", channel="sms", sms_body="Hi {{ contact.first_name }}, 10% off. Reply STOP"
    )
    campaign = Campaign.objects.create(
        name="Flash", slug="flash", channel="sms", sms_from="+14155550999"
    )
    variant = Variant.objects.create(campaign=campaign, template=template)
    return Delivery.objects.create(
        campaign=campaign, variant=variant, contact=contact, channel="sms", to_address=""
    )


def built(delivery: Delivery) -> Any:
    assert delivery.variant is not None
    rendered = render_message(
        template=delivery.variant.template,
        contact=delivery.contact,
        campaign=delivery.campaign,
        delivery_id=delivery.pk,
    )
    return build_sms(
        delivery=delivery, campaign=delivery.campaign, contact=delivery.contact, rendered=rendered
    )


@pytest.mark.django_db
def test_the_sms_carries_the_status_callback_and_the_delivery_id(
    settings: Any, delivery: Delivery
) -> None:
    settings.PUBLIC_BASE_URL = "https://cadence.example"

    message = built(delivery)

    assert message.to == "+14155550100"
    assert message.from_ == "+14155550999"
    assert message.body == "Hi Ada, 10% off. Reply STOP"
    assert message.status_callback == "https://cadence.example/webhooks/twilio/status/"
    assert message.metadata["delivery_id"] == str(delivery.pk)


@pytest.mark.django_db
def test_the_built_sms_lands_in_the_outbox_with_its_delivery_id(
    outbox: Path, delivery: Delivery
) -> None:
    get_sms_backend().send(built(delivery))

    record = json.loads((outbox / "sms.jsonl").read_text(encoding="utf-8"))
    assert record["body"] == "Hi Ada, 10% off. Reply STOP"
    assert record["metadata"]["delivery_id"] == str(delivery.pk)


@pytest.mark.django_db
def test_a_marketing_sms_without_opt_out_words_gets_them(delivery: Delivery) -> None:
    assert delivery.variant is not None
    MessageTemplate.objects.filter(pk=delivery.variant.template_id).update(
        sms_body="Hi {{ contact.first_name }}, 10% off today."
    )
    delivery.refresh_from_db()
    assert built(delivery).body == "Hi Ada, 10% off today. Reply STOP to opt out."


@pytest.mark.django_db
def test_the_opt_out_text_starts_a_new_sentence_after_a_body_without_punctuation(
    delivery: Delivery,
) -> None:
    assert delivery.variant is not None
    MessageTemplate.objects.filter(pk=delivery.variant.template_id).update(sms_body="20% off today")
    delivery.refresh_from_db()
    message = built(delivery)
    assert message.body == "20% off today. Reply STOP to opt out."
    assert sms_segments(message.body) == ("GSM-7", 37, 1)


@pytest.mark.parametrize(
    ("body", "sent"),
    [
        ("Hi!", "Hi! Reply STOP to opt out."),
        ("Sale ends soon?", "Sale ends soon? Reply STOP to opt out."),
        ("Last day...", "Last day... Reply STOP to opt out."),
        ('She said "yes."', 'She said "yes." Reply STOP to opt out.'),
        ("20% off today  ", "20% off today. Reply STOP to opt out."),
        ("今日は20%オフ", "今日は20%オフ。Reply STOP to opt out."),
        ("今日は20%オフ\uff01", "今日は20%オフ\uff01Reply STOP to opt out."),  # full-width !
        (
            "Shop now https://shop.example/p/1",
            "Shop now https://shop.example/p/1\nReply STOP to opt out.",
        ),
        ("", "Reply STOP to opt out."),
    ],
)
def test_the_opt_out_text_is_appended_as_its_own_sentence(body: str, sent: str) -> None:
    assert sms_with_opt_out(body, transactional=False) == sent


def test_a_body_that_says_stop_or_a_transactional_one_gets_no_opt_out_text() -> None:
    assert sms_with_opt_out("Reply STOP to end", transactional=False) == "Reply STOP to end"
    assert sms_with_opt_out("Order shipped", transactional=True) == "Order shipped"


@pytest.mark.django_db
def test_the_length_limit_counts_the_full_stop_added_before_the_opt_out_text() -> None:
    contact = ContactFactory.create(phone="+14155550100")
    campaign = Campaign(name="c", slug="c", channel="sms")

    def render(body: str) -> Any:
        template = MessageTemplate(name="t", channel="sms", sms_body=body)
        return render_message(template=template, contact=contact, campaign=campaign, recent={})

    fits = render("a" * 1_576)
    assert len(sms_with_opt_out(fits.sms_body, transactional=False)) == 1_600
    with pytest.raises(RenderError, match="would be 1601 characters with the opt-out text"):
        render("a" * 1_577)


@pytest.mark.django_db
def test_a_transactional_sms_is_left_as_written(delivery: Delivery) -> None:
    assert delivery.variant is not None
    MessageTemplate.objects.filter(pk=delivery.variant.template_id).update(
        sms_body="Your order 1042 has shipped."
    )
    Campaign.objects.filter(pk=delivery.campaign_id).update(is_transactional=True)
    delivery.refresh_from_db()
    assert built(delivery).body == "Your order 1042 has shipped."
