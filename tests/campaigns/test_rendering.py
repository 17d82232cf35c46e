"""Personalisation in the restricted template engine: what a recipient reads, what a
marketer is told when a template is wrong, and what a template can never reach."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Delivery, MessageTemplate
from campaigns.rendering import (
    RenderError,
    recent_context_for,
    render_message,
    template_errors,
    template_validate,
)
from campaigns.services.launch import campaign_launch
from campaigns.services.send import campaign_drain
from crm.models import Contact, Event
from tests.campaigns.dispatch_helpers import campaign_for, deliveries, grant
from tests.factories import ContactFactory, EventFactory

pytestmark = pytest.mark.django_db


def email_template(**fields: Any) -> MessageTemplate:
    values = {"name": "t", "channel": "email", "subject": "Hello", "html_body": "<p>Hi</p>"}
    values.update(fields)
    return MessageTemplate.objects.create(**values)


def email_campaign(**fields: Any) -> Campaign:
    # The message as written: tracked links have their own tests (test_tracking_*.py).
    values = {
        "name": "Spring sale",
        "slug": "spring-sale",
        "channel": "email",
        "track_opens_clicks": False,
        "utm_parameters": False,
    }
    values.update(fields)
    return Campaign.objects.create(**values)


def render(template: MessageTemplate, contact: Contact, campaign: Campaign | None = None) -> Any:
    return render_message(
        template=template, contact=contact, campaign=campaign or email_campaign(), delivery_id=7
    )


# --- Personalisation -----------------------------------------------------------------------


def test_subject_and_body_use_the_contacts_own_fields_and_attributes() -> None:
    contact = ContactFactory.create(first_name="Zoë", attributes={"plan": "pro"})
    template = email_template(
        subject="{{ contact.first_name }}, your {{ contact.attributes.plan }} plan",
        html_body="<p>Dear {{ contact.first_name }} {{ contact.last_name }}</p>",
    )

    rendered = render(template, contact)

    assert rendered.subject == "Zoë, your pro plan"
    assert f"<p>Dear Zoë {contact.last_name}</p>" in rendered.html


def test_a_missing_first_name_falls_back_to_the_default_filter() -> None:
    contact = ContactFactory.create(first_name="")
    template = email_template(subject="Hi {{ contact.first_name|default:'there' }}!")

    assert render(template, contact).subject == "Hi there!"


def test_the_last_viewed_product_and_last_order_come_from_the_latest_events() -> None:
    contact = ContactFactory.create()
    now = timezone.now()
    EventFactory.create(
        contact=contact,
        properties={"product_name": "Old lamp"},
        occurred_at=now - dt.timedelta(days=3),
    )
    EventFactory.create(
        contact=contact,
        properties={"product_name": "Blue mug"},
        occurred_at=now - dt.timedelta(hours=1),
    )
    EventFactory.create(
        contact=contact,
        type=Event.ORDER_COMPLETED,
        properties={"order_id": "A-7"},
        value=Decimal("42.50"),
        currency="EUR",
        occurred_at=now - dt.timedelta(days=10),
    )
    template = email_template(
        html_body="<p>{{ last_viewed.product_name }} / {{ last_order.order_id }} "
        "{{ last_order.value|floatformat:2 }} {{ last_order.currency }}</p>"
    )

    assert "<p>Blue mug / A-7 42.50 EUR</p>" in render(template, contact).html


def test_an_sms_campaign_renders_the_sms_body_as_plain_text() -> None:
    contact = ContactFactory.create(first_name="Tom & Jerry", phone="+14155550100")
    template = MessageTemplate.objects.create(
        name="s", channel="sms", sms_body="Hi {{ contact.first_name }}, 10% off. Reply STOP"
    )
    campaign = email_campaign(channel="sms", slug="sms-sale")

    rendered = render(template, contact, campaign)

    assert rendered.sms_body == "Hi Tom & Jerry, 10% off. Reply STOP"
    assert rendered.html == ""


# --- Escaping and what templates cannot reach ----------------------------------------------


def test_a_contact_named_like_a_script_is_escaped_in_the_html_body() -> None:
    contact = ContactFactory.create(first_name="<script>alert(1)</script>")
    template = email_template(html_body="<p>Hi {{ contact.first_name }}</p>")

    html = render(template, contact).html

    assert "<script>" not in html
    assert "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt;</p>" in html


def test_event_properties_are_escaped_in_the_html_body() -> None:
    contact = ContactFactory.create()
    EventFactory.create(contact=contact, properties={"product_name": '<img src=x onerror="x">'})
    template = email_template(html_body="<p>{{ last_viewed.product_name }}</p>")

    html = render(template, contact).html

    assert "<img" not in html
    assert "&lt;img src=x onerror=&quot;x&quot;&gt;" in html


def test_settings_and_other_outside_variables_are_rejected_at_validation() -> None:
    template = email_template(
        subject="[{{ settings.SECRET_KEY }}]",
        html_body="<p>{% if request.user %}x{% endif %}</p>",
    )

    errors = template_errors(template)

    assert errors["subject"][0].startswith("unknown variable 'settings' (line 1)")
    assert errors["html_body"][0].startswith("unknown variable 'request' (line 1)")


def test_methods_of_whitelisted_objects_are_refused_and_never_run() -> None:
    # A name the context does not have is refused, rather than rendered blank.
    contact = ContactFactory.create()
    template = email_template(
        subject="[{{ campaign.delete }}]", html_body="<p>[{{ contact.save }}]</p>"
    )

    assert template_errors(template) == {
        "subject": ["campaign.delete is not a known variable (line 1): campaign has name, slug"],
        "html_body": [
            "contact.save is not a known variable (line 1): contact has first_name, last_name, "
            "email, phone, locale, timezone, country, attributes"
        ],
    }
    with pytest.raises(RenderError):
        render(template, contact)
    assert Campaign.objects.filter(slug="spring-sale").exists()
    assert Contact.objects.filter(pk=contact.pk).exists()


def test_loop_and_with_variables_are_allowed() -> None:
    template = email_template(
        html_body="{% for key, value in contact.attributes.items %}{{ key }}={{ value }}"
        "{% endfor %}{% with name=contact.first_name %}{{ name }}{% endwith %}"
    )

    assert template_errors(template) == {}


def test_underscore_attributes_are_rejected_at_validation() -> None:
    template = email_template(html_body="{{ contact.__class__ }}")

    assert template_errors(template) == {
        "html_body": [
            "Variables and attributes may not begin with underscores: 'contact.__class__'"
        ]
    }


@pytest.mark.parametrize(
    ("source", "tag"),
    [
        ("{% include 'admin/base.html' %}", "include"),
        ("{% extends 'admin/base.html' %}", "extends"),
        ("{% load static %}", "load"),
        ("{% debug %}", "debug"),
        ("{% ssi '/etc/passwd' %}", "ssi"),
        ("{% url 'admin:index' %}", "url"),
        ("{% csrf_token %}", "csrf_token"),
        ("{% autoescape off %}x{% endautoescape %}", "autoescape"),
    ],
)
def test_a_forbidden_tag_is_rejected_with_its_name(source: str, tag: str) -> None:
    template = email_template(html_body=f"<p>{source}</p>")

    assert template_validate(template) == [f"HTML body: {{% {tag} %}} is not allowed (line 1)"]


def test_the_safe_filter_is_rejected_so_contact_data_stays_escaped() -> None:
    template = email_template(html_body="{{ contact.first_name|safe }}")

    assert template_errors(template) == {"html_body": ["the filter |safe is not allowed"]}


def test_rendering_a_forbidden_tag_raises_a_render_error_naming_the_field() -> None:
    contact = ContactFactory.create()
    template = email_template(subject="{% include 'x.html' %}")

    with pytest.raises(RenderError, match=r"^subject: \{% include %\} is not allowed"):
        render(template, contact)


def test_validation_reports_each_broken_field_separately() -> None:
    template = email_template(
        subject="{% if %}", html_body="<p>{% for x in y %}</p>", text_body="{{ x|nope }}"
    )

    errors = template_errors(template)

    assert set(errors) == {"subject", "html_body", "text_body"}
    assert errors["html_body"] == [
        "Unclosed tag on line 1: 'for'. Looking for one of: empty, endfor."
    ]
    assert errors["text_body"] == ["the filter |nope is not allowed"]


def test_a_valid_template_validates_without_any_contact_in_the_database() -> None:
    template = email_template(
        subject="Hi {{ contact.first_name|default:'there' }}",
        html_body="<p>{{ last_viewed.product_name }} {{ unsubscribe_url }} {{ sender }}</p>",
    )

    assert Contact.objects.count() == 0
    assert template_validate(template) == []


def test_an_email_template_without_a_subject_or_body_is_reported() -> None:
    template = email_template(subject="", html_body="")

    assert template_errors(template) == {
        "subject": ["an email template needs a subject"],
        "html_body": ["an email template needs an HTML body or a text body"],
    }


# --- Scale ---------------------------------------------------------------------------------


def test_recent_context_for_a_batch_takes_two_queries(
    django_assert_num_queries: Any,
) -> None:
    contacts = ContactFactory.create_batch(30)
    for contact in contacts[:20]:
        EventFactory.create(contact=contact, properties={"product_name": f"mug {contact.pk}"})
    for contact in contacts[:5]:
        EventFactory.create(
            contact=contact, type=Event.ORDER_COMPLETED, value=Decimal("10"), currency="USD"
        )

    with django_assert_num_queries(2):
        recent = recent_context_for([c.pk for c in contacts])

    assert recent[contacts[0].pk]["last_viewed"]["product_name"] == f"mug {contacts[0].pk}"
    assert recent[contacts[0].pk]["last_order"]["value"] == Decimal("10")
    assert recent[contacts[25].pk] == {"last_viewed": {}, "last_order": {}}


def test_render_message_with_a_given_recent_context_runs_no_query(
    django_assert_num_queries: Any,
) -> None:
    contact = ContactFactory.create()
    campaign = email_campaign()
    template = email_template(html_body="<p>{{ last_viewed.product_name|default:'our shop' }}</p>")

    with django_assert_num_queries(0):
        rendered = render_message(
            template=template, contact=contact, campaign=campaign, delivery_id=1, recent={}
        )

    assert "<p>our shop</p>" in rendered.html


def test_rendered_parts_are_plain_strings_that_get_escaped_wherever_they_are_shown() -> None:
    from django.utils.html import conditional_escape

    contact = ContactFactory.create()
    template = email_template(html_body="<p>Hi</p>", text_body="a < b")

    rendered = render(template, contact)

    assert conditional_escape(rendered.html).startswith("&lt;p&gt;Hi&lt;/p&gt;")
    assert conditional_escape(rendered.text).startswith("a &lt; b")


def test_a_template_cannot_change_the_data_it_is_given() -> None:
    contact = ContactFactory.create(attributes={"plan": "pro", "tags": ["a", "b"]})
    recent = {"last_viewed": {"product_name": "Blue mug"}, "last_order": {}}
    template = email_template(
        html_body="<p>{{ contact.attributes.clear }}{{ contact.attributes.tags.pop }}"
        "{{ last_viewed.clear }}{{ contact.attributes.plan }}"
        "{% for tag in contact.attributes.tags %}{{ tag }}{% endfor %}</p>"
    )

    rendered = render_message(
        template=template, contact=contact, campaign=email_campaign(), recent=recent
    )

    assert "<p>proab</p>" in rendered.html
    assert contact.attributes == {"plan": "pro", "tags": ["a", "b"]}
    assert recent["last_viewed"] == {"product_name": "Blue mug"}


# --- No silent blanks -----------------------------------------------------------------------


def test_saving_a_misspelt_contact_field_shows_did_you_mean(marketer_client: Client) -> None:
    response = marketer_client.post(
        reverse("admin:campaigns_messagetemplate_add"),
        {
            "name": "Typo",
            "channel": "email",
            "subject": "Hello",
            "preheader": "",
            "html_body": "<p>Hi {{ contact.frist_name }}</p>",
            "text_body": "",
            "sms_body": "",
        },
    )

    assert response.status_code == 200
    assert not MessageTemplate.objects.filter(name="Typo").exists()
    [error] = response.context["adminform"].form.errors["html_body"]
    assert error == (
        "contact.frist_name is not a known variable; did you mean contact.first_name? (line 1)"
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{% if campaign.nmae %}x{% endif %}",
            "campaign.nmae is not a known variable; did you mean campaign.name? (line 1)",
        ),
        (
            "{{ contact.first_name|default:contact.lastname }}",
            "contact.lastname is not a known variable; did you mean contact.last_name? (line 1)",
        ),
        (
            "{{ contcat.first_name }}",
            "unknown variable 'contcat' (line 1); did you mean contact? templates can use "
            "campaign, contact, last_order, last_viewed, now, preferences_url, sender, "
            "unsubscribe_url",
        ),
    ],
)
def test_unknown_names_in_conditions_filter_arguments_and_roots_suggest_the_closest(
    source: str, message: str
) -> None:
    template = email_template(html_body=source)

    assert template_errors(template) == {"html_body": [message]}


def test_open_ended_attributes_and_event_properties_are_allowed_at_save() -> None:
    template = email_template(
        html_body="{{ contact.attributes.anything }} {{ last_viewed.whatever }} "
        "{{ last_order.custom_field }} {{ now.year }} {{ contact.first_name.0 }}"
    )

    assert template_errors(template) == {}


def test_a_link_whose_value_is_missing_saves_but_is_held_not_sent(outbox: Any) -> None:
    ada = ContactFactory.create()  # no product viewed: last_viewed has no product_id
    grant(ada)
    campaign = campaign_for(
        [ada], html='<a href="https://shop.example.com/p/{{ last_viewed.product_id }}">See</a>'
    )
    assert template_errors(campaign.variants.get().template) == {}

    campaign_launch(campaign=campaign, enqueue=False)
    campaign_drain(campaign=campaign)

    delivery = deliveries(campaign)[ada.pk]
    assert (delivery.status, delivery.reason) == (Delivery.Status.SKIPPED, "render_error")
    assert delivery.error == (
        "HTML body: missing_value: last_viewed.product_id is empty in a link (line 1); "
        'give it a fallback with |default:"..."'
    )
    assert not list((outbox / "email").glob("*.eml"))


def test_a_link_with_a_declared_fallback_is_sent_with_the_fallback(outbox: Any) -> None:
    ada = ContactFactory.create()
    grant(ada)
    campaign = campaign_for(
        [ada],
        html='<a href="https://shop.example.com/p/{{ last_viewed.product_id|default:"sale" }}">'
        "See</a>",
        track_opens_clicks=False,
        utm_parameters=False,
    )

    campaign_launch(campaign=campaign, enqueue=False)
    campaign_drain(campaign=campaign)

    assert deliveries(campaign)[ada.pk].status == Delivery.Status.SENT
    [eml] = (outbox / "email").glob("*.eml")
    assert "https://shop.example.com/p/sale" in eml.read_text()


def test_a_link_whose_value_is_present_is_sent() -> None:
    contact = ContactFactory.create()
    EventFactory.create(contact=contact, properties={"product_id": "SKU-9"})
    template = email_template(
        html_body='<a href="https://shop.example.com/p/{{ last_viewed.product_id }}">See</a>'
    )

    assert 'href="https://shop.example.com/p/SKU-9"' in render(template, contact).html


def test_a_missing_value_in_an_sms_link_holds_the_message() -> None:
    contact = ContactFactory.create(phone="+14155550100")
    template = MessageTemplate.objects.create(
        name="s",
        channel="sms",
        sms_body="New in: https://shop.example.com/p/{{ last_viewed.product_id }} Reply STOP",
    )

    with pytest.raises(RenderError) as raised:
        render(template, contact, email_campaign(channel="sms", slug="sms"))

    assert str(raised.value).startswith(
        "SMS body: missing_value: last_viewed.product_id is empty in a link (line 1)"
    )


def test_a_missing_value_outside_a_link_still_renders_blank() -> None:
    contact = ContactFactory.create()
    template = email_template(
        html_body='<p>[{{ last_viewed.product_name }}]</p><a href="https://shop.example.com/">'
        "[{{ last_viewed.category }}]</a>",
        text_body="Shop: https://shop.example.com/ [{{ last_viewed.product_name }}]",
    )

    rendered = render(template, contact)

    assert "<p>[]</p>" in rendered.html
    assert '<a href="https://shop.example.com/">[]</a>' in rendered.html
    assert rendered.text.startswith("Shop: https://shop.example.com/ []")
