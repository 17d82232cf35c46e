"""Provider webhooks are authenticated by default: only the configured ESP's tracking URL
exists, a request without working credentials gets 401 and changes nothing, and a hostile
body never gets a 500."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client, TestCase

from campaigns.models import Response
from crm.models import ConsentRecord, Suppression
from tests.campaigns.consent_helpers import delivery_for, grant, latest, status_of
from tests.factories import ContactFactory
from tests.worker import tasks_eager

pytestmark = pytest.mark.django_db

SECRET = "hooks:a-long-random-webhook-password"
POSTMARK = "/webhooks/anymail/postmark/tracking/"
SENDGRID = "/webhooks/anymail/sendgrid/tracking/"


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def post(url: str, body: str | bytes, *, auth: str | None = None) -> Any:
    """Posts as a stranger would; a 500 is returned, not raised, so the test can see it."""
    headers = {"Authorization": _basic(auth)} if auth is not None else {}
    with tasks_eager(), TestCase.captureOnCommitCallbacks(execute=True):
        return Client(raise_request_exception=False).post(
            url, body, content_type="application/json", headers=headers
        )


def postmark_bounce(address: str) -> str:
    return json.dumps(
        {
            "RecordType": "Bounce",
            "ID": 4242,
            "Type": "HardBounce",
            "Email": address,
            "BouncedAt": "2026-01-10T10:05:00Z",
            "Description": "The server was unable to deliver your message",
            "Details": "550 5.1.1 no such user",
            "MessageID": "pm-forged",
        }
    )


def sendgrid_spam_report(address: str) -> str:
    return json.dumps(
        [
            {
                "email": address,
                "timestamp": 1767000000,
                "event": "spamreport",
                "sg_event_id": "forged-1",
                "sg_message_id": "sg-forged",
            }
        ]
    )


def _nothing_changed(contact: Any) -> None:
    assert not Suppression.objects.exists()
    assert not Response.objects.exists()
    assert status_of(contact) == "granted"


# --- Without a configured secret every request is refused -------------------------------------


def test_a_forged_postmark_bounce_without_a_configured_secret_gets_401_and_suppresses_nothing(
    settings: Any,
) -> None:
    settings.EMAIL_ESP = "postmark"
    settings.ANYMAIL = {}
    contact = ContactFactory.create(email="victim@example.com")
    grant(contact)

    response = post(POSTMARK, postmark_bounce("victim@example.com"))

    assert response.status_code == 401
    _nothing_changed(contact)


def test_a_forged_sendgrid_spam_report_without_a_configured_secret_gets_401_and_suppresses_nothing(
    settings: Any,
) -> None:
    settings.EMAIL_ESP = "sendgrid"
    settings.ANYMAIL = {}
    contact = ContactFactory.create(email="victim@example.com")
    grant(contact)

    response = post(SENDGRID, sendgrid_spam_report("victim@example.com"), auth="any:thing")

    assert response.status_code == 401
    _nothing_changed(contact)


# --- With a configured secret, wrong credentials are refused ----------------------------------


@pytest.mark.parametrize(
    ("esp", "url", "body"),
    [
        ("postmark", POSTMARK, postmark_bounce("victim@example.com")),
        ("sendgrid", SENDGRID, sendgrid_spam_report("victim@example.com")),
    ],
)
@pytest.mark.parametrize("auth", [None, "hooks:guess", "", "hooks:a-long-random-webhook-passwor"])
def test_wrong_or_missing_credentials_get_401_and_change_nothing(
    settings: Any, esp: str, url: str, body: str, auth: str | None
) -> None:
    settings.EMAIL_ESP = esp
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    contact = ContactFactory.create(email="victim@example.com")
    grant(contact)

    response = post(url, body, auth=auth)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    _nothing_changed(contact)


def test_the_right_credentials_still_apply_a_sendgrid_spam_report(settings: Any) -> None:
    settings.EMAIL_ESP = "sendgrid"
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    contact = ContactFactory.create(email="angry@example.com")
    grant(contact)

    response = post(SENDGRID, sendgrid_spam_report("angry@example.com"), auth=SECRET)

    assert response.status_code == 200
    assert Suppression.objects.get().reason == Suppression.Reason.COMPLAINT
    assert status_of(contact) == "withdrawn"


# --- Only the configured ESP's tracking URL exists --------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        SENDGRID,
        "/webhooks/anymail/mailgun/tracking/",
        "/webhooks/anymail/postmark/inbound/",
        "/webhooks/anymail/mandrill/",
    ],
)
def test_only_the_configured_esps_tracking_url_answers(settings: Any, path: str) -> None:
    settings.EMAIL_ESP = "postmark"
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    contact = ContactFactory.create(email="victim@example.com")
    grant(contact)

    other = post(path, sendgrid_spam_report("victim@example.com"), auth=SECRET)
    configured = post(POSTMARK, postmark_bounce("nobody@example.com"), auth=SECRET)

    assert other.status_code == 404
    assert configured.status_code == 200
    assert status_of(contact) == "granted"


def test_no_tracking_url_answers_when_no_email_esp_is_configured(settings: Any) -> None:
    settings.EMAIL_ESP = ""
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    contact = ContactFactory.create(email="victim@example.com")
    grant(contact)

    response = post(POSTMARK, postmark_bounce("victim@example.com"), auth=SECRET)

    assert response.status_code == 404
    _nothing_changed(contact)


# --- Twilio without its token ------------------------------------------------------------------


def test_a_twilio_stop_without_a_configured_auth_token_gets_401_and_changes_nothing(
    settings: Any,
) -> None:
    settings.TWILIO_AUTH_TOKEN = ""
    contact = ContactFactory.create(phone="+14155550123")
    grant(contact, channel="sms")

    response = Client().post(
        "/webhooks/twilio/inbound/",
        {"MessageSid": "SM1", "From": "+14155550123", "Body": "STOP"},
        HTTP_X_TWILIO_SIGNATURE="c2lnbmVkLWJ5LW5vYm9keQ==",
    )

    assert response.status_code == 401
    assert status_of(contact, channel="sms") == "granted"
    assert not Response.objects.exists()


# --- System checks ----------------------------------------------------------------------------


def test_check_fails_when_email_esp_is_set_without_a_webhook_secret(settings: Any) -> None:
    settings.EMAIL_ESP = "postmark"
    settings.ANYMAIL = {}

    with pytest.raises(SystemCheckError, match=r"campaigns\.E002") as raised:
        call_command("check")

    assert "ANYMAIL_WEBHOOK_SECRET" in str(raised.value)


def test_check_fails_when_email_esp_names_no_anymail_esp(settings: Any) -> None:
    settings.EMAIL_ESP = "postmarc"
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}

    with pytest.raises(SystemCheckError, match=r"campaigns\.E003") as raised:
        call_command("check")

    assert "'postmarc'" in str(raised.value)
    assert "postmark" in str(raised.value)  # the hint lists the ESPs that exist


def test_check_passes_with_an_esp_and_its_webhook_secret(settings: Any) -> None:
    settings.EMAIL_ESP = "postmark"
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}

    call_command("check")  # raises SystemCheckError on any error


# --- Hostile bodies with the right credentials -------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="bad-json"),
        pytest.param(b"\xff\xfe not utf-8", id="not-utf8"),
        pytest.param(b"[1, 2, 3]", id="a-list"),
        pytest.param(b'"a string"', id="a-string"),
        pytest.param(b"null", id="null"),
        pytest.param(b'{"RecordType": ["Bounce"], "Type": {"a": 1}}', id="wrong-types"),
        pytest.param(b'{"RecordType": "Bounce", "Metadata": "x"}', id="metadata-not-a-dict"),
        pytest.param(
            b'{"RecordType": "Bounce", "Type": "HardBounce", "Email": "victim\\u0000@example.com"}',
            id="nul-in-address",
        ),
        pytest.param(
            b'{"RecordType": "Bounce", "Type": "HardBounce", "Email": "victim@example.com",'
            b' "Description": "\\ud800"}',
            id="lone-surrogate",
        ),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-100000-deep"),
        pytest.param(
            json.dumps({"RecordType": "Open", "Recipient": "x" * 3_000_000}).encode(),
            id="3-MB-payload",
        ),
        pytest.param(
            b'{"RecordType": "Bounce", "Type": "HardBounce", "Email": "victim@example.com",'
            b' "BouncedAt": "9999-12-31T23:59:59-14:00", "ID": 1}',
            id="date-past-year-9999-in-utc",
        ),
    ],
)
def test_a_malformed_postmark_body_changes_nothing_and_never_gets_a_500(
    settings: Any, body: bytes
) -> None:
    settings.EMAIL_ESP = "postmark"
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    contact = ContactFactory.create(email="victim@example.com")
    grant(contact)

    response = post(POSTMARK, body, auth=SECRET)

    assert response.status_code in {400, 413}, response.content[:300]
    _nothing_changed(contact)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            b'{"event": "spamreport", "email": "victim@example.com"}', id="an-object-not-a-list"
        ),
        pytest.param(b'[{"event": "spamreport", "email": "victim@example.com"}, 7]', id="7"),
        pytest.param(
            b'[{"event": "spamreport", "email": "victim@example.com", "timestamp": 1e300}]',
            id="timestamp-overflow",
        ),
        pytest.param(
            b'[{"event": "spamreport", "email": "victim@example.com", "timestamp": "soon"}]',
            id="timestamp-a-string",
        ),
        pytest.param(
            b'[{"event": "spamreport", "email": "victim@example.com", "timestamp": 1,'
            b' "sg_event_id": "a\\u0000b"}]',
            id="nul-in-event-id",
        ),
    ],
)
def test_a_malformed_sendgrid_body_changes_nothing_and_never_gets_a_500(
    settings: Any, body: bytes
) -> None:
    settings.EMAIL_ESP = "sendgrid"
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    contact = ContactFactory.create(email="victim@example.com")
    grant(contact)

    response = post(SENDGRID, body, auth=SECRET)

    assert response.status_code == 400, response.content[:300]
    _nothing_changed(contact)


# --- A provider's own unsubscribe has its own consent source ----------------------------------


def test_a_postmark_subscription_change_withdraws_with_source_provider_unsubscribe(
    settings: Any,
) -> None:
    settings.EMAIL_ESP = "postmark"
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    contact = ContactFactory.create(email="leaving@example.com")
    grant(contact)
    delivery = delivery_for(contact, provider_message_id="pm-55")

    response = post(
        POSTMARK,
        json.dumps(
            {
                "RecordType": "SubscriptionChange",
                "MessageID": "pm-55",
                "ServerID": 23,
                "MessageStream": "outbound",
                "ChangedAt": "2026-01-10T12:00:00Z",
                "Recipient": "leaving@example.com",
                "Origin": "Recipient",
                "SuppressSending": True,
                "SuppressionReason": "ManualSuppression",
                "Metadata": {"delivery_id": str(delivery.pk)},
            }
        ),
        auth=SECRET,
    )

    assert response.status_code == 200
    assert Response.objects.get().kind == Response.Kind.UNSUBSCRIBED
    assert status_of(contact) == "withdrawn"
    assert latest(contact).source == ConsentRecord.Source.PROVIDER_UNSUBSCRIBE
