"""The outgoing-webhook guard sees through IPv6 addresses that carry an IPv4 address inside
(6to4, Teredo, IPv4-mapped, IPv4-compatible, NAT64): the IPv4 inside is what gets reached."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from tests.factories import ContactFactory
from tests.triggers.helpers import make_rule
from triggers.actions import actions
from triggers.actions.base import ActionError
from triggers.models import TriggerFiring

pytestmark = pytest.mark.django_db


def _firing() -> TriggerFiring:
    return TriggerFiring.objects.create(
        rule=make_rule(),
        rule_version=1,
        contact=ContactFactory.create(),
        occurrence_key="once",
        fired_at=timezone.now(),
        batch="00000000-0000-0000-0000-000000000001",
    )


def _call(url: str) -> None:
    firing = _firing()
    actions["webhook"].run(
        {"url": url, "timeout": 0.5}, firing=firing, contact_id=firing.contact_id
    )


@pytest.fixture(autouse=True)
def _webhook_settings(settings: Any) -> None:
    settings.TRIGGER_WEBHOOKS_ALLOW_PRIVATE = False
    settings.TRIGGER_WEBHOOK_SECRET = "s3cret"


@pytest.mark.parametrize(
    ("address", "inside"),
    [
        ("2002:7f00:1::", "127.0.0.1"),  # 6to4 of loopback
        ("2002:a00:7::1", "10.0.0.7"),  # 6to4 of a private address
        ("2002:a9fe:a9fe::", "169.254.169.254"),  # 6to4 of the cloud metadata address
        ("2002:c0a8:101:0:1:2:3:4", "192.168.1.1"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"),  # Teredo, client 127.0.0.1
        ("2001:0:4136:e378:8000:63bf:f5ff:fff8", "10.0.0.7"),  # Teredo, client 10.0.0.7
        ("::ffff:127.0.0.1", "127.0.0.1"),  # IPv4-mapped
        ("::ffff:a9fe:a9fe", "169.254.169.254"),
        ("::127.0.0.1", "127.0.0.1"),  # IPv4-compatible (deprecated, still routed by some)
        ("::10.0.0.7", "10.0.0.7"),
        ("64:ff9b::7f00:1", "127.0.0.1"),  # NAT64 well-known prefix
    ],
)
def test_an_ipv6_address_embedding_a_private_ipv4_is_refused(address: str, inside: str) -> None:
    with pytest.raises(ActionError, match=f"embeds {inside}, a private, loopback or link-local"):
        _call(f"http://[{address}]/hook")


def test_a_6to4_address_embedding_a_public_ipv4_is_not_refused_by_the_guard() -> None:
    # Nothing is reachable from the test machine, so the call itself fails, but not because
    # the guard refused it.
    with pytest.raises(ActionError) as raised:
        _call("http://[2002:808:808::1]/hook")

    assert "refused:" not in str(raised.value)
