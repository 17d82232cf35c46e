"""Actions: signed webhooks, refused private destinations, attributes, lists, campaigns."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from django.utils import timezone

from segments.models import StaticList, StaticListMember
from tests.factories import ContactFactory
from tests.triggers.helpers import make_rule
from triggers.actions import actions
from triggers.actions.base import ActionError
from triggers.models import TriggerFiring

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook_server() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
    server.server_close()


def _firing(**rule: Any) -> TriggerFiring:
    contact = ContactFactory.create()
    return TriggerFiring.objects.create(
        rule=make_rule(**rule),
        rule_version=1,
        contact=contact,
        occurrence_key="once",
        fired_at=timezone.now(),
        batch="00000000-0000-0000-0000-000000000001",
    )


def test_the_webhook_body_is_signed_with_hmac_sha256(settings: Any, hook_server: Any) -> None:
    settings.TRIGGER_WEBHOOKS_ALLOW_PRIVATE = True
    settings.TRIGGER_WEBHOOK_SECRET = "s3cret"
    url, received = hook_server
    firing = _firing()
    outcome = actions["webhook"].run(
        {"url": url, "timeout": 2}, firing=firing, contact_id=firing.contact_id
    )
    [(headers, body)] = received
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Cadence-Signature"] == expected
    assert json.loads(body)["contact"] == str(firing.contact.uuid)
    assert outcome["status"] == 204


def test_a_loopback_webhook_is_refused_by_default(settings: Any, hook_server: Any) -> None:
    settings.TRIGGER_WEBHOOKS_ALLOW_PRIVATE = False
    settings.TRIGGER_WEBHOOK_SECRET = "s3cret"
    url, received = hook_server
    firing = _firing()
    with pytest.raises(ActionError, match="private, loopback or link-local"):
        actions["webhook"].run({"url": url}, firing=firing, contact_id=firing.contact_id)
    assert received == []


@pytest.mark.parametrize("host", ["10.0.0.7", "169.254.169.254", "192.168.1.1", "[::1]"])
def test_private_and_link_local_webhooks_are_refused(settings: Any, host: str) -> None:
    settings.TRIGGER_WEBHOOKS_ALLOW_PRIVATE = False
    settings.TRIGGER_WEBHOOK_SECRET = "s3cret"
    firing = _firing()
    with pytest.raises(ActionError, match="refused"):
        actions["webhook"].run(
            {"url": f"http://{host}/x"}, firing=firing, contact_id=firing.contact_id
        )


def test_set_attribute_writes_the_contact_attribute() -> None:
    firing = _firing()
    actions["set_attribute"].run(
        {"attribute": "winback", "value": 2, "value_type": "number"},
        firing=firing,
        contact_id=firing.contact_id,
    )
    firing.contact.refresh_from_db()
    assert firing.contact.attributes["winback"] == 2


def test_add_to_and_remove_from_a_static_list() -> None:
    vip = StaticList.objects.create(name="VIP", slug="vip")
    firing = _firing()
    actions["add_to_list"].run({"list": "vip"}, firing=firing, contact_id=firing.contact_id)
    assert StaticListMember.objects.filter(static_list=vip, contact=firing.contact).exists()
    actions["remove_from_list"].run({"list": "vip"}, firing=firing, contact_id=firing.contact_id)
    assert not StaticListMember.objects.exists()


def test_win_back_sends_email_when_the_contact_has_no_sms_consent() -> None:
    from campaigns.models import Delivery
    from tests.campaigns.dispatch_helpers import campaign_for, grant

    contact = ContactFactory.create(phone="+14155550100")
    grant(contact, channel="email")
    sms = campaign_for([], channel="sms", kind="triggered")
    email = campaign_for([], channel="email", kind="triggered")
    firing = _firing(
        slug="win-back",
        actions=[{"id": "send_campaign", "campaign": sms.slug, "fallback_campaign": email.slug}],
    )
    outcome = actions["send_campaign"].run(
        {"campaign": sms.slug, "fallback_campaign": email.slug},
        firing=firing,
        contact_id=contact.pk,
    )
    delivery = Delivery.objects.get(contact=contact)
    assert outcome["fallback"] is True and delivery.campaign == email
    assert delivery.occurrence == f"trigger-{firing.pk}"


def test_win_back_sends_sms_when_the_contact_agreed_to_sms() -> None:
    from campaigns.models import Delivery
    from tests.campaigns.dispatch_helpers import campaign_for, grant

    contact = ContactFactory.create(phone="+14155550101")
    grant(contact, channel="sms")
    sms = campaign_for([], channel="sms", kind="triggered")
    email = campaign_for([], channel="email", kind="triggered")
    firing = _firing(
        slug="win-back",
        actions=[{"id": "send_campaign", "campaign": sms.slug, "fallback_campaign": email.slug}],
    )
    actions["send_campaign"].run(
        {"campaign": sms.slug, "fallback_campaign": email.slug},
        firing=firing,
        contact_id=contact.pk,
    )
    assert Delivery.objects.get(contact=contact).campaign == sms
