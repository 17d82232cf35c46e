"""Template injection in marketer-edited messages: settings, debug and include are refused,
and nothing secret is ever rendered."""

from __future__ import annotations

from typing import Any

import pytest

from campaigns.models import Campaign, MessageTemplate
from campaigns.rendering import RenderError, render_message, template_validate
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

ATTACKS = [
    "{{ settings.SECRET_KEY }}",
    "{% debug %}",
    "{% include '/etc/passwd' %}",
    "{% load log %}{% get_admin_log 10 as log %}",
    "{% extends 'admin/base.html' %}",
    "{% ssi '/etc/passwd' %}",
    "{{ contact.delete }}",
    "{{ campaign.__class__.objects.all }}",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_an_injected_template_is_refused_or_renders_no_secret(settings: Any, attack: str) -> None:
    settings.SECRET_KEY = "the-real-secret-key-0123456789"
    contact = ContactFactory.create(first_name="Ada")
    template = MessageTemplate.objects.create(
        name="x",
        channel="email",
        subject="Hi",
        html_body=f"<p>{attack}</p>",
    )
    campaign = Campaign.objects.create(name="c", slug="c", channel="email")
    problems = template_validate(template)
    try:
        rendered = render_message(template=template, contact=contact, campaign=campaign)
    except RenderError as exc:
        print(f"{attack!r}: refused ({exc})")
        assert problems
        return
    output = rendered.html + rendered.text
    print(f"{attack!r}: rendered without effect, problems={problems}")
    assert settings.SECRET_KEY not in output
    assert "root:" not in output and "DEBUG" not in output
    assert ContactFactory._meta.model.objects.filter(pk=contact.pk).exists()


@pytest.mark.parametrize("tag", ["{% debug %}", "{% include 'x.html' %}", "{% load i18n %}"])
def test_dangerous_tags_are_named_in_the_validation_error(tag: str) -> None:
    template = MessageTemplate(name="x", channel="email", subject="Hi", html_body=tag)
    problems = template_validate(template)
    assert problems and "not allowed" in " ".join(problems), problems


@pytest.mark.parametrize(
    "attack", ["{{ settings.SECRET_KEY }}", "{% if settings.DEBUG %}x{% endif %}"]
)
def test_reaching_for_settings_is_refused_at_validation(attack: str) -> None:
    template = MessageTemplate(name="x", channel="email", subject="Hi", html_body=attack)
    [problem] = template_validate(template)
    assert "unknown variable 'settings'" in problem
